"""KiteFeed (supervised kiteconnect KiteTicker) against the stand-in over real loopback sockets.

Every fault the brief names is injected on the stand-in and the feed must come back (or end
fatally, for a 403) within the stated bounds. All feeds share the one reactor thread of this
pytest process, which also proves that a feed can stop and another start after it.
Waits are on conditions with deadlines; nothing sleeps.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from livecli.config import mask
from livecli.errors import AuthError, ConnectionFailedError, TooManyInstrumentsError, UsageError
from livecli.kite.connection import (
    AUTH_FAILED,
    AUTH_MESSAGE,
    CLOSED,
    CONNECTED,
    CONNECTING,
    FAILED,
    RECONNECTING,
    STALE,
    ConnectionStatus,
    KiteFeed,
)

StandIn = pytest.importorskip("livecli.sim").StandIn

API_KEY = "livecli-sim"
TOKEN = "sim-access-token-0123456789abcdef"


class Recorder:
    """Collects what a feed delivers, and lets the test thread wait for it."""

    def __init__(self, fail_every: int = 0) -> None:
        self.cond = threading.Condition()
        self.frames = 0
        self.packets = 0
        self.seen: Counter[int] = Counter()
        self.kinds: dict[int, set[str]] = {}
        self.states: list[tuple[float, ConnectionStatus]] = []
        self.texts: list[Any] = []
        self.fail_every = fail_every
        self.calls = 0

    def on_frame(self, frame: Any, received_at: float) -> None:
        self.calls += 1
        if self.fail_every and self.calls % self.fail_every == 0:
            raise RuntimeError(f"handler boom {self.calls}")
        toks = frame.token.tolist()
        modes = frame.mode
        with self.cond:
            self.frames += 1
            self.packets += len(toks)
            self.seen.update(toks)
            for t, m in zip(toks, modes, strict=True):
                self.kinds.setdefault(t, set()).add(m)
            self.cond.notify_all()

    def on_text(self, message: Any) -> None:
        with self.cond:
            self.texts.append(message)
            self.cond.notify_all()

    def on_state(self, status: ConnectionStatus) -> None:
        with self.cond:
            self.states.append((time.monotonic(), status))
            self.cond.notify_all()

    def wait(self, predicate: Callable[[], bool], timeout: float) -> bool:
        with self.cond:
            return self.cond.wait_for(predicate, timeout=timeout)

    def state_names(self) -> list[str]:
        with self.cond:
            return [s.state for _, s in self.states]

    def first_state_after(self, state: str, t0: float) -> float | None:
        with self.cond:
            for t, s in self.states:
                if t >= t0 and s.state == state:
                    return t
        return None

    def flowing(self, timeout: float = 5.0, more: int = 3) -> bool:
        """True once `more` further packets arrived."""
        with self.cond:
            start = self.packets
        return self.wait(lambda: self.packets >= start + more, timeout)


@pytest.fixture(scope="module")
def sim() -> Iterator[Any]:
    with StandIn(api_key=API_KEY, access_token=TOKEN, seed=1, speed=60, heartbeat_s=1.0) as s:
        yield s


@pytest.fixture(autouse=True)
def _clean_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "sim" in request.fixturenames:
        s = request.getfixturevalue("sim")
        s.reject_auth(False)
        s.resume()


@pytest.fixture
def feeds() -> Iterator[list[KiteFeed]]:
    made: list[KiteFeed] = []
    yield made
    for f in made:
        f.stop()


def make(feeds: list[KiteFeed], sim: Any, rec: Recorder, token: str = TOKEN,
         **kw: Any) -> KiteFeed:
    f = KiteFeed(API_KEY, token, sim.ws_url, rec.on_frame, on_text=rec.on_text,
                 on_state=rec.on_state, **kw)
    feeds.append(f)
    return f


def tradables(sim: Any, n: int) -> list[int]:
    toks = [i.instrument_token for i in sim.instruments if i.segment == "NSE"]
    assert len(toks) >= n
    return toks[:n]


def client_modes(sim: Any) -> list[dict[int, str]]:
    return [c["tokens"] for c in sim.clients()]


# ------------------------------------------------------------------------------------------------
def test_connects_subscribes_each_mode_and_delivers_ticks(sim: Any, feeds: list[KiteFeed]) -> None:
    rec = Recorder()
    t = tradables(sim, 6)
    subs = {t[0]: "ltp", t[1]: "ltp", t[2]: "quote", t[3]: "quote", t[4]: "full", t[5]: "full"}
    feed = make(feeds, sim, rec)
    feed.start(subs)
    assert feed.wait_connected(5)
    assert sim.wait_until(lambda: subs in client_modes(sim), 5), client_modes(sim)
    assert rec.wait(lambda: all(rec.seen[x] for x in subs), 10), rec.seen
    # Each instrument arrives in the packet kind of its own mode.
    with rec.cond:
        for tok, mode in subs.items():
            assert rec.kinds[tok] == {mode}, (tok, rec.kinds[tok])
    st = feed.status()
    assert st.state == CONNECTED and st.connections == 1 and st.connected == 1
    assert st.instruments == 6 and st.frames > 0 and st.ticks >= 6
    assert st.last_message_age_s is not None and st.last_message_age_s < 2
    assert st.reconnects == 0 and st.handler_errors == 0 and st.malformed == 0
    assert feed.subscriptions() == subs
    assert rec.state_names()[:2] == [CONNECTING, CONNECTED]
    feed.stop()
    assert feed.status().state == CLOSED
    assert rec.state_names()[-1] == CLOSED
    assert sim.wait_for_clients(0, 3, exact=True)


def test_dropped_connection_is_back_and_resubscribed_in_same_modes(
        sim: Any, feeds: list[KiteFeed]) -> None:
    rec = Recorder()
    t = tradables(sim, 6)
    subs = {t[0]: "ltp", t[1]: "quote", t[2]: "full", t[3]: "ltp", t[4]: "quote", t[5]: "full"}
    feed = make(feeds, sim, rec)
    feed.start(subs)
    assert feed.wait_connected(5)
    assert sim.wait_until(lambda: subs in client_modes(sim), 5)
    assert rec.flowing()
    accepted = sim.connections_accepted
    t0 = time.monotonic()
    assert sim.drop_connections() == 1
    assert sim.wait_until(
        lambda: sim.connections_accepted > accepted and subs in client_modes(sim), 3.0
    ), client_modes(sim)
    assert feed.wait_connected(3.0 - (time.monotonic() - t0))
    back = time.monotonic() - t0
    assert back < 3.0, back
    assert rec.flowing()
    st = feed.status()
    assert st.reconnects == 1 and st.state == CONNECTED
    reconnecting = [s for _, s in rec.states if s.state == RECONNECTING]
    assert reconnecting and reconnecting[0].attempt == 1
    # Why it reconnected was shown while it did; once back and delivering, it is cleared.
    assert "closed" in (reconnecting[0].last_error or ""), reconnecting[0].last_error
    assert st.last_error is None and st.links[0].last_error is None
    assert reconnecting[0].retry_in_s is not None and 0 < reconnecting[0].retry_in_s <= 1.0
    assert sim.clients()[0]["tokens"] == subs  # exactly these, each in its own mode


def test_silent_connection_is_detected_and_recovers(sim: Any, feeds: list[KiteFeed]) -> None:
    watchdog = 2.0
    rec = Recorder()
    feed = make(feeds, sim, rec, watchdog_s=watchdog)
    subs = dict.fromkeys(tradables(sim, 3), "quote")
    feed.start(subs)
    assert feed.wait_connected(5)
    assert rec.flowing()
    t0 = time.monotonic()
    sim.go_silent()  # TCP stays open, nothing is sent, not even heartbeats
    assert rec.wait(lambda: rec.first_state_after(STALE, t0) is not None, watchdog + 1.5)
    stale_at = rec.first_state_after(STALE, t0)
    assert stale_at is not None and stale_at - t0 <= watchdog + 1.0, stale_at - t0
    assert rec.wait(lambda: rec.first_state_after(RECONNECTING, stale_at) is not None, 2)
    assert "no message" in (feed.status().links[0].last_error or "")
    sim.resume()
    assert feed.wait_connected(5)
    assert sim.wait_until(lambda: subs in client_modes(sim), 5)
    assert rec.flowing()
    assert feed.status().reconnects >= 1


def test_heartbeats_alone_keep_an_idle_link_alive(sim: Any, feeds: list[KiteFeed]) -> None:
    rec = Recorder()
    feed = make(feeds, sim, rec, watchdog_s=2.0)
    feed.start({})
    assert feed.wait_connected(5)
    assert feed.wait_state(lambda s: s.heartbeats >= 3, 6)
    st = feed.status()
    assert st.state == CONNECTED and st.reconnects == 0 and st.ticks == 0
    assert STALE not in rec.state_names()


@pytest.mark.parametrize("how", ["wrong_token", "reject_auth"])
def test_403_is_fatal_fast_with_the_login_message(sim: Any, feeds: list[KiteFeed], how: str) -> None:
    rec = Recorder()
    if how == "wrong_token":
        feed = make(feeds, sim, rec, token="not-the-right-token-1234")
    else:
        sim.reject_auth(True)
        feed = make(feeds, sim, rec)
    rejected = sim.upgrades_rejected
    t0 = time.monotonic()
    feed.start(dict.fromkeys(tradables(sim, 2), "full"))
    assert feed.wait_done(2.0)
    assert time.monotonic() - t0 < 2.0
    assert isinstance(feed.failed, AuthError) and str(feed.failed) == AUTH_MESSAGE
    with pytest.raises(AuthError, match="livecli login"):
        feed.raise_if_failed()
    st = feed.status()
    assert st.state == AUTH_FAILED and st.last_error == AUTH_MESSAGE
    assert rec.state_names()[-1] == AUTH_FAILED
    assert not feed.wait_connected(0.1)
    # No retry loop: the stand-in sees no further upgrade (negative check, bounded).
    assert sim.upgrades_rejected == rejected + 1
    assert not sim.wait_until(lambda: sim.upgrades_rejected > rejected + 1, 1.0)


def test_403_on_reconnect_ends_the_running_session(sim: Any, feeds: list[KiteFeed]) -> None:
    rec = Recorder()
    feed = make(feeds, sim, rec)
    feed.start(dict.fromkeys(tradables(sim, 2), "quote"))
    assert feed.wait_connected(5)
    sim.reject_auth(True)  # the token expired while we were connected
    t0 = time.monotonic()
    sim.drop_connections()
    assert feed.wait_done(2.0)
    assert time.monotonic() - t0 < 2.0
    assert isinstance(feed.failed, AuthError)
    assert feed.status().state == AUTH_FAILED
    assert rec.state_names()[-1] == AUTH_FAILED


def test_malformed_frame_is_skipped_and_counted(sim: Any, feeds: list[KiteFeed]) -> None:
    rec = Recorder()
    feed = make(feeds, sim, rec)
    feed.start(dict.fromkeys(tradables(sim, 4), "full"))
    assert feed.wait_connected(5)
    assert rec.flowing()
    assert sim.send_malformed_frame() == 1
    assert feed.wait_state(lambda s: s.malformed >= 1, 5)
    assert rec.flowing()
    st = feed.status()
    assert st.malformed == 1 and st.reconnects == 0 and st.state == CONNECTED
    assert "malformed" in (st.last_error or "")


def test_handler_exception_is_counted_and_ticks_keep_flowing(
        sim: Any, feeds: list[KiteFeed]) -> None:
    rec = Recorder(fail_every=2)  # every second frame the handler raises
    feed = make(feeds, sim, rec)
    feed.start(dict.fromkeys(tradables(sim, 4), "quote"))
    assert feed.wait_connected(5)
    assert feed.wait_state(lambda s: s.handler_errors >= 3, 10)
    assert rec.flowing()
    st = feed.status()
    assert st.handler_errors >= 3 and st.reconnects == 0 and st.state == CONNECTED
    assert "handler boom" in (st.last_handler_error or "")
    assert st.frames >= st.handler_errors + rec.frames - 1


def test_text_messages_are_surfaced(sim: Any, feeds: list[KiteFeed]) -> None:
    rec = Recorder()
    feed = make(feeds, sim, rec)
    feed.start(dict.fromkeys(tradables(sim, 1), "ltp"))
    assert feed.wait_connected(5)
    order = {"order_id": "250101000000001", "status": "COMPLETE", "tradingsymbol": "INFY"}
    assert sim.send_text("order", order) == 1
    assert sim.send_text("error", "Invalid subscription payload") == 1
    assert sim.send_text("message", "Broker alert") == 1
    assert rec.wait(lambda: len(rec.texts) >= 3, 5)
    with rec.cond:
        by_type = {m.type: m.data for m in rec.texts}
    assert by_type == {"order": order, "error": "Invalid subscription payload",
                       "message": "Broker alert"}
    st = feed.status()
    assert st.text_messages == 3 and st.state == CONNECTED and st.reconnects == 0
    assert "Invalid subscription payload" in (st.last_error or "")


def test_live_subscribe_set_mode_unsubscribe_survive_reconnect(
        sim: Any, feeds: list[KiteFeed]) -> None:
    rec = Recorder()
    a, b, c = tradables(sim, 3)
    feed = make(feeds, sim, rec)
    feed.start({a: "quote"})
    assert feed.wait_connected(5)
    feed.subscribe([b, c], "full")
    assert sim.wait_for_subscription([b, c], "full", 5)
    feed.set_mode([a], "ltp")
    assert sim.wait_for_subscription([a], "ltp", 5)
    feed.unsubscribe([c])
    want = {a: "ltp", b: "full"}
    assert sim.wait_until(lambda: want in client_modes(sim), 5), client_modes(sim)
    sim.drop_connections()
    assert sim.wait_until(lambda: sim.connections_accepted >= 2 and want in client_modes(sim), 5)
    assert feed.subscriptions() == want
    with pytest.raises(UsageError):
        feed.subscribe([a], "depth")


def test_instruments_beyond_one_connection_use_more_connections(
        sim: Any, feeds: list[KiteFeed]) -> None:
    rec = Recorder()
    toks = tradables(sim, 5)
    feed = make(feeds, sim, rec, max_per_connection=2)
    feed.start(dict.fromkeys(toks[:3], "quote"))
    assert feed.wait_connected(5)
    assert feed.status().connections == 2
    assert sim.wait_for_clients(2, 5, exact=True)
    feed.subscribe(toks[3:], "ltp")  # room on the existing links only for one more
    assert sim.wait_until(
        lambda: sorted(len(m) for m in client_modes(sim)) == [1, 2, 2], 5), client_modes(sim)
    assert feed.wait_connected(5) and feed.status().connections == 3
    union: dict[int, str] = {}
    for m in client_modes(sim):
        assert len(m) <= 2
        union.update(m)
    assert union == feed.subscriptions()
    with pytest.raises(TooManyInstrumentsError):
        feed.subscribe([toks[0] + 256 * 7919, toks[0] + 256 * 7927], "ltp")  # 7 > 3 x 2
    assert len(feed.subscriptions()) == 5


def test_more_than_9000_instruments_refused_before_connecting(
        sim: Any, feeds: list[KiteFeed]) -> None:
    rec = Recorder()
    feed = make(feeds, sim, rec)
    accepted = sim.connections_accepted
    subs = {((300_000 + i) << 8) | 1: "ltp" for i in range(9001)}
    with pytest.raises(TooManyInstrumentsError, match="9001 instruments"):
        feed.start(subs)
    assert sim.connections_accepted == accepted
    assert feed.status().state == "idle" and rec.states == []
    # Exactly 9000 is allowed (validated only; the stand-in does not need to know them).
    assert feed.max_instruments == 9000


def test_stop_and_start_again_in_one_process(sim: Any, feeds: list[KiteFeed]) -> None:
    from livecli.kite import reactor as shared

    subs = dict.fromkeys(tradables(sim, 2), "full")
    rec = Recorder()
    feed = make(feeds, sim, rec)
    feed.start(subs)
    assert feed.wait_connected(5) and rec.flowing()
    thread = shared._thread
    feed.stop()
    feed.stop()  # idempotent
    assert feed.status().state == CLOSED
    assert sim.wait_for_clients(0, 3, exact=True)
    with rec.cond:
        frozen = rec.packets
    # The same feed starts again with its subscriptions...
    feed.start()
    assert feed.wait_connected(5) and rec.flowing()
    assert rec.packets > frozen
    assert sim.wait_until(lambda: subs in client_modes(sim), 5)
    feed.stop()
    # ... and so does a brand-new one, on the same never-stopped reactor thread.
    rec2 = Recorder()
    feed2 = make(feeds, sim, rec2)
    feed2.start(subs)
    assert feed2.wait_connected(5) and rec2.flowing()
    assert shared._thread is thread and thread is not None and thread.is_alive()
    feed2.stop()
    assert feed2.status().state == CLOSED


def test_gives_up_after_max_attempts_when_nothing_listens(feeds: list[KiteFeed]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    rec = Recorder()
    feed = KiteFeed(API_KEY, TOKEN, f"ws://127.0.0.1:{port}", rec.on_frame, on_state=rec.on_state,
                    reconnect_initial_s=0.05, reconnect_max_delay_s=0.2, max_attempts=3)
    feeds.append(feed)
    feed.start({256265: "full"})
    assert feed.wait_done(5)
    assert isinstance(feed.failed, ConnectionFailedError)
    assert "3 reconnect attempts" in str(feed.failed)
    st = feed.status()
    assert st.state == FAILED
    attempts = [s.attempt for _, s in rec.states if s.state == RECONNECTING]
    assert attempts == [1, 2, 3]
    assert all(s.retry_in_s is not None and s.retry_in_s <= 0.2 + 1e-6
               for _, s in rec.states if s.state == RECONNECTING)


def test_access_token_never_logged_or_reported(
        sim: Any, feeds: list[KiteFeed], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    rec = Recorder()
    feed = make(feeds, sim, rec)
    feed.start(dict.fromkeys(tradables(sim, 2), "quote"))
    assert feed.wait_connected(5)
    sim.drop_connections()
    assert feed.wait_state(lambda s: s.reconnects >= 1 and s.state == CONNECTED, 5)
    sim.reject_auth(True)
    sim.drop_connections()
    assert feed.wait_done(3)
    texts = [str(s) for _, s in rec.states] + [str(feed.status()), repr(feed)]
    # Every logger, the stand-in's own (websockets logs upgrade request lines) included.
    texts += [r.getMessage() for r in caplog.records]
    assert any(r.name.startswith("livecli.sim") for r in caplog.records)
    assert any("reconnecting" in t for t in texts)
    assert not [t for t in texts if TOKEN in t]
    # One masking function, one form: the stand-in's upgrade log shows what the feed shows.
    upgrades = [t for t in texts if "access_token=" in t and t.startswith(("GET", "< GET"))]
    assert upgrades and all(f"access_token={mask(TOKEN)}" in t for t in upgrades), upgrades[:2]
    assert mask(TOKEN) in repr(feed)
    assert feed.scrub(f"url ?access_token={TOKEN}") == f"url ?access_token={mask(TOKEN)}"


def test_bad_arguments_are_refused_early() -> None:
    def noop(frame: Any, at: float) -> None:
        return None

    with pytest.raises(AuthError, match="livecli login"):
        KiteFeed(API_KEY, "", "ws://127.0.0.1:1", noop)
    with pytest.raises(UsageError, match="ws://"):
        KiteFeed(API_KEY, TOKEN, "http://127.0.0.1:1", noop)
    feed = KiteFeed(API_KEY, TOKEN, "ws://127.0.0.1:1", noop)
    with pytest.raises(UsageError, match="mode"):
        feed.start({256265: "fast"})
    with pytest.raises(UsageError, match="token"):
        feed.start({-5: "ltp"})
    feed.stop()  # never started: nothing to do
    assert feed.status().state == "idle"


def test_3500_instruments_use_two_connections(feeds: list[KiteFeed]) -> None:
    with StandIn(api_key=API_KEY, access_token=TOKEN, seed=2, speed=1,
                 extra_instruments=3500) as big:
        toks = [i.instrument_token for i in big.instruments][:3500]
        assert len(toks) == 3500
        rec = Recorder()
        feed = make(feeds, big, rec)
        feed.start(dict.fromkeys(toks, "ltp"))
        assert feed.wait_connected(10)
        st = feed.status()
        assert st.connections == 2 and st.connected == 2 and st.instruments == 3500
        assert big.wait_until(
            lambda: sum(len(m) for m in client_modes(big)) == 3500, 10), [
                len(m) for m in client_modes(big)]
        per = client_modes(big)
        assert len(per) == 2 and all(len(m) <= 3000 for m in per)
        assert set(per[0]) | set(per[1]) == set(toks)
        assert not set(per[0]) & set(per[1])
        assert rec.flowing(10)
        feed.stop()


def test_server_clock_is_the_standins_when_it_names_itself(
        sim: Any, feeds: list[KiteFeed]) -> None:
    """The feed reads the stand-in's market clock from the upgrade: it agrees with the market."""
    from websockets.sync.client import connect

    from livecli.kite.protocol import STANDIN_HEADER

    # What the stand-in itself puts on the upgrade, seen by a plain WebSocket client.
    with connect(f"{sim.ws_url}/?api_key={API_KEY}&access_token={TOKEN}") as ws:
        names_itself = STANDIN_HEADER in ws.response.headers
    rec = Recorder()
    feed = make(feeds, sim, rec)
    feed.start(dict.fromkeys(tradables(sim, 1), "ltp"))
    assert feed.wait_connected(5)
    clock = feed.server_clock
    if not names_itself:
        assert clock is None  # as from real Kite
        return
    assert clock is not None
    market, wall, speed = clock
    assert speed == sim.speed
    now_wall, now_market = time.time(), sim.now()
    # The market's time extrapolated from the upgrade matches the stand-in's own clock.
    assert abs(market + (now_wall - wall) * speed - now_market) < 0.5 * speed
