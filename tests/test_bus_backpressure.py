"""The publisher's process holds back when it falls behind, so ticks are shed before pickling.

Ticks the session's process pickles and ships, only for the publisher's process to shed them,
cost the receiving path for nothing (at 300,000 ticks/s received and 50,000 published, most of
what was shipped). So the publisher's process stops reading its pipe while a quarter of its
buffer waits; the session's side then holds its items and sheds ticks at admission, counted.
Skipped where `nats-server` is not installed.
"""

from __future__ import annotations

import time

from livecli.bus.options import PublishOptions
from livecli.bus.process import ProcessPublisher
from livecli.bus.publisher import TextBatch
from tests.nats_server import nats_server, needs_nats

__all__ = ["nats_server"]
pytestmark = [needs_nats]

TICKS_PER_FRAME = 250
ENCODE_S = 0.02  # the publisher's process takes this long per frame: it falls behind


class _SlowEncoder:
    """Stands in for the session's encoder in the publisher's process, at a known slow pace."""

    def __call__(self, kind: int, item: object, received_at: float) -> TextBatch:
        time.sleep(ENCODE_S)
        return TextBatch(["test.backpressure"] * TICKS_PER_FRAME, ["{}"] * TICKS_PER_FRAME)


def slow_encoder() -> _SlowEncoder:
    return _SlowEncoder()


def test_a_publisher_behind_makes_the_session_side_shed_before_pickling(nats_server):
    buffer = 16 * TICKS_PER_FRAME
    pub = ProcessPublisher(PublishOptions(url=nats_server.url, buffer=buffer), slow_encoder)
    pub.start()
    frames = 200
    frame = b"\x00" * 40_000  # what a frame of 250 full packets pickles to, near enough
    try:
        for _ in range(frames):
            pub.put_ticks(frame, TICKS_PER_FRAME, time.time())
            time.sleep(0.002)  # 125,000 ticks/s offered, ~12,500 taken
    finally:
        assert pub.close(timeout=20)
    st = pub.stats()
    shed_here = pub.room.ticks_dropped
    total = frames * TICKS_PER_FRAME
    assert st.ticks_published + st.ticks_dropped == total
    assert st.ticks_published >= 4 * TICKS_PER_FRAME
    # Most of what could not be published was shed on the session's side, never shipped.
    assert shed_here >= 0.8 * st.ticks_dropped > 0, (shed_here, st.ticks_dropped)
