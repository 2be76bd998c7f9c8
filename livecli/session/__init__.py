"""The live session: wires the connection, the decoder, the candle engine, the store and callbacks."""
