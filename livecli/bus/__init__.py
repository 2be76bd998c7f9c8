"""The message bus: livecli's feed on NATS JetStream, for consumers on other machines.

One Kite api_key feeds at most 9000 instruments; its consumers (strategy workers, dashboards,
archives) outgrow one machine long before. This package is the NATS adapter and nothing more:
subjects (`subjects.py`), the connection options (`options.py`), a publisher that never blocks
its producers (`publisher.py`), run in a process of its own (`process.py`) so that encoding and
sending never take the receiving path's CPU or GIL, and a subscriber (`subscriber.py`). What is published (the JSON
lines' objects) is made by the session (livecli/session/publish.py), which wires the publisher
to a running session; the consumer with a session's read API is livecli/session/attach_nats.py.

nats-py is imported lazily, inside the threads that use it: `livecli --help` never pays for it.
"""
