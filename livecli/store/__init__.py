"""What livecli keeps: the SQLite candle store, tick files, and CSV/Parquet export."""
