"""The core: ticks, candles, intervals, exchange sessions and time.

Nothing in this package does I/O, starts a thread, or imports rich, typer, sockets or the
other layers of livecli. It is the part the rest stands on, and it is tested on its own.
"""
