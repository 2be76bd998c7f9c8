"""Kite Connect protocol and connection: the binary codec, the supervised ticker, instruments, login."""
