"""The stand-in's WebSocket ticker over real loopback sockets: protocol, limits and faults."""

from __future__ import annotations

import itertools
import json
import re
import time

import pytest

from livecli.kite import codec
from livecli.sim import StandIn
from tests.sim_client import SimClient

RELIANCE, INFY, SBIN, NIFTY, GANGOTRI = 738561, 408065, 779521, 256265, 3419393
DATE = "2025-12-10"


@pytest.fixture
def standin():
    with StandIn(speed=60, date=DATE, heartbeat_s=0.5) as s:
        yield s


def client(s: StandIn, **kw) -> SimClient:
    return SimClient(s.ws_url, kw.get("api_key", s.api_key), kw.get("access_token", s.access_token))


def test_wrong_credentials_fail_the_upgrade_with_403(standin):
    from websockets.exceptions import InvalidStatus

    with pytest.raises(InvalidStatus) as e:
        client(standin, access_token="wrong")
    assert e.value.response.status_code == 403
    with pytest.raises(InvalidStatus):
        client(standin, api_key="someone-else")
    standin.reject_auth(True)
    with pytest.raises(InvalidStatus) as e:
        client(standin)
    assert e.value.response.status_code == 403
    assert standin.upgrades_rejected == 3
    standin.reject_auth(False)
    with client(standin):
        assert standin.wait_for_clients(1, 2)


def test_subscriptions_and_modes_are_tracked_and_honoured(standin):
    with client(standin) as c:
        c.subscribe([RELIANCE, INFY, NIFTY])
        assert standin.wait_for_subscription([RELIANCE, INFY, NIFTY], "quote", 3)
        c.send("mode", ["full", [RELIANCE, NIFTY]])
        c.send("mode", ["ltp", [INFY]])
        assert standin.wait_for_subscription([RELIANCE, NIFTY], "full", 3)
        assert standin.wait_for_subscription([INFY], "ltp", 3)
        (info,) = standin.clients()
        assert info["tokens"] == {RELIANCE: "full", INFY: "ltp", NIFTY: "full"}

        def kinds(got):
            seen = set()
            for _, b in got.binary:
                if len(b) > 1:
                    f = codec.decode_frame(b, 0.0)
                    cols = f.columns()
                    for tok, ts in zip(cols.token, f.exchange_timestamp.tolist(), strict=True):
                        seen.add((tok, ts > 0))
            return seen

        # Full packets carry the exchange time, ltp packets none; the index sends index packets.
        assert c.until(lambda g: {(RELIANCE, True), (NIFTY, True), (INFY, False)} <= kinds(g), 5)
        t_before = standin.now()
        recent = c.collect(0.6).ticks()
        assert recent, "ticks keep flowing"
        stamps = [t.exchange_timestamp for t in recent if t.exchange_timestamp]
        assert stamps and all(abs(s - t_before) < 120 for s in stamps)  # simulated time, at 60x
        c.send("unsubscribe", [RELIANCE, NIFTY])
        assert standin.wait_until(
            lambda: [list(x.tokens) for x in standin.state.conns.values()] == [[INFY]], 3)
        c.collect(0.6)  # let frames already in flight arrive
        assert {t.instrument_token for t in c.collect(1.0).ticks()} <= {INFY}


@pytest.mark.parametrize(("speed", "low", "high"), [(1, 3, 8), (60, 60, 100)])
def test_frames_hold_one_slice_of_market_time_in_exchange_time_order(speed, low, high):
    # 0.25 s cycles at 1x; at 60x a frame per market second (a sixtieth of a real second).
    with StandIn(speed=speed, date=DATE) as s, client(s) as c:
        c.subscribe([RELIANCE, SBIN, INFY, NIFTY], "full")
        assert c.until(lambda g: g.frames(), 3)  # the first links start on the minute
        got = c.collect(1.5)
    frames = got.frames()
    assert low <= len(frames) <= high
    stamps = [codec.decode_frame(f, 0.0).exchange_timestamp.tolist() for f in frames]
    for ts in stamps:
        assert ts == sorted(ts)
        assert ts[-1] - ts[0] <= 1  # whole seconds: a frame never spans more than one
    last = [ts[-1] for ts in stamps]
    assert last == sorted(last)


def test_heartbeats_when_there_is_nothing_to_send(standin):
    with client(standin) as c:
        got = c.collect(1.6)  # nothing subscribed
        assert got.frames() == []
        assert 2 <= got.heartbeats() <= 4
        assert all(b == codec.HEARTBEAT for _, b in got.binary)


def test_fresh_subscription_gets_a_snapshot_even_when_illiquid():
    with StandIn(speed=1, date=DATE, start_time="11:00") as s, client(s) as c:
        c.subscribe([GANGOTRI], "full")
        assert c.until(lambda g: any(t.instrument_token == GANGOTRI for t in g.ticks()), 3)
        (tick,) = [t for t in c.got.ticks() if t.instrument_token == GANGOTRI][:1]
        assert tick.exchange_timestamp <= s.now()
        assert tick.volume_traded > 0


def test_more_than_3000_instruments_gets_an_error_and_the_rest_ignored():
    with StandIn(speed=1, date=DATE, extra_instruments=3100) as s, client(s) as c:
        toks = [i.instrument_token for i in s.instruments][:3050]
        c.subscribe(toks)
        assert c.until(lambda g: g.text, 5)
        msg = json.loads(c.got.text[0][1])
        assert msg["type"] == "error" and "3000" in msg["data"]
        assert s.wait_until(lambda: sum(len(x.tokens) for x in s.state.conns.values()) == 3000, 3)
        assert set(s.clients()[0]["tokens"]) == set(toks[:3000])


def test_several_connections_are_served_at_once(standin):
    with client(standin) as a, client(standin) as b:
        a.subscribe([RELIANCE], "full")
        b.subscribe([SBIN], "ltp")
        assert standin.wait_for_clients(2, 3)
        assert a.until(lambda g: any(t.instrument_token == RELIANCE for t in g.ticks()), 3)
        assert b.until(lambda g: any(t.instrument_token == SBIN for t in g.ticks()), 3)
        assert {t.instrument_token for t in b.got.ticks()} == {SBIN}


def test_drop_connections_aborts_every_client(standin):
    from websockets.exceptions import ConnectionClosed

    with client(standin) as a, client(standin) as b:
        assert standin.wait_for_clients(2, 3)
        assert standin.drop_connections() == 2
        for c in (a, b):
            with pytest.raises(ConnectionClosed) as e:
                for _ in range(20):
                    c.ws.recv(timeout=2)
            assert e.value.rcvd is None  # no close frame: the TCP connection was cut
        assert standin.wait_for_clients(0, 3, exact=True)
    with client(standin):  # and it accepts new connections
        assert standin.wait_for_connections(3, 3)


def test_silence_sends_nothing_with_tcp_open_then_resumes(standin):
    with client(standin) as c:
        c.subscribe([RELIANCE], "full")
        assert c.until(lambda g: len(g.frames()) >= 2, 3)
        standin.go_silent()
        c.collect(0.4)  # a frame may already be on its way
        quiet = c.collect(1.5)
        assert quiet.binary == [] and quiet.text == []
        c.ws.ping().wait(2)  # the TCP connection and the peer are still there
        standin.resume()
        assert c.until(lambda g: len(g.binary) > len(quiet.binary) + 1, 3)
        assert c.collect(0.6).frames()


def test_silence_for_a_period_ends_by_itself(standin):
    with client(standin) as c:
        c.subscribe([RELIANCE], "full")
        assert c.until(lambda g: g.frames(), 3)
        standin.go_silent(1.2)
        c.collect(0.3)
        start = time.monotonic()
        assert c.until(lambda g: False, 0.6) is False
        n = len(c.got.binary)
        assert c.until(lambda g: len(g.binary) > n, 3)
        assert time.monotonic() - start >= 0.8


def test_malformed_frame_is_rejected_by_the_decoder(standin):
    with client(standin) as c:
        c.subscribe([RELIANCE, INFY], "full")
        assert c.until(lambda g: g.frames(), 3)
        assert standin.send_malformed_frame() == 1
        bad = []

        def saw_bad(g):
            for _, b in g.binary:
                if len(b) > 1:
                    try:
                        codec.decode_frame(b, 0.0)
                    except codec.MalformedFrame:
                        bad.append(b)
            return bool(bad)

        assert c.until(saw_bad, 3)
        n = len(c.got.binary)
        assert c.until(lambda g: len(g.binary) > n, 3)
        codec.decode_frame(c.got.binary[-1][1], 0.0)  # later frames are whole again
        assert standin.clients()[0]["malformed_sent"] == 1


def test_malformed_frame_when_nothing_ticks(standin):
    with client(standin) as c:
        assert standin.wait_for_clients(1, 3)
        standin.send_malformed_frame()
        assert c.until(lambda g: any(len(b) > 1 for _, b in g.binary), 3)
        frame = next(b for _, b in c.got.binary if len(b) > 1)
        with pytest.raises(codec.MalformedFrame):
            codec.decode_frame(frame, 0.0)


def test_text_messages_arrive(standin):
    with client(standin) as c:
        assert standin.wait_for_clients(1, 3)
        assert standin.send_text("order", {"order_id": "1", "status": "COMPLETE"}) == 1
        standin.send_text("error", "Something went wrong")
        standin.send_text("message", "Broker alert")
        assert c.until(lambda g: len(g.text) >= 3, 3)
        msgs = [codec.decode_text(t) for _, t in c.got.text]
        assert [(m.type, m.data) for m in msgs] == [
            ("order", {"order_id": "1", "status": "COMPLETE"}),
            ("error", "Something went wrong"),
            ("message", "Broker alert"),
        ]


def _ticks_from(seed: int) -> dict[tuple[int, int], float]:
    """(token, volume) -> price of RELIANCE/INFY full ticks a client received from the open."""
    with StandIn(speed=120, date=DATE, seed=seed) as s, client(s) as c:
        c.subscribe([RELIANCE, INFY], "full")
        c.collect(1.5)
    return {(t.instrument_token, t.volume_traded): t.last_price for t in c.got.ticks()}


def test_same_seed_same_ticks_over_the_wire_different_seed_different():
    a, b, other = _ticks_from(5), _ticks_from(5), _ticks_from(6)
    common = set(a) & set(b)
    assert len(common) > 100
    assert all(a[k] == b[k] for k in common)
    assert len(set(a) & set(other)) < len(common) / 4 or any(
        a[k] != other[k] for k in set(a) & set(other))


@pytest.mark.parametrize("speed", [1, 60, 0.5])
def test_the_upgrade_names_the_standin_its_clock_and_speed(speed):
    from websockets.sync.client import connect

    from livecli.kite.protocol import STANDIN_CLOCK_HEADER, STANDIN_HEADER, STANDIN_SPEED_HEADER

    with StandIn(speed=speed, date=DATE, start_time="13:00") as s:
        before = s.now()
        with connect(f"{s.ws_url}?api_key={s.api_key}&access_token={s.access_token}",
                     open_timeout=5) as ws:
            after = s.now()
            h = ws.response.headers
        assert h[STANDIN_HEADER] and float(h[STANDIN_SPEED_HEADER]) == speed
        clock = h[STANDIN_CLOCK_HEADER]
        assert re.fullmatch(r"\d+(\.\d+)?", clock), clock  # a plain decimal
        assert before - 1e-3 <= float(clock) <= after + 1e-3  # the market's time at the upgrade
        assert float(clock) - s.clock.start_epoch < 600  # the market's 13:00, not the wall clock


def test_a_refused_upgrade_names_the_standin_too(standin):
    from websockets.exceptions import InvalidStatus

    from livecli.kite.protocol import STANDIN_HEADER

    with pytest.raises(InvalidStatus) as e:
        client(standin, access_token="wrong")
    assert e.value.response.status_code == 403
    assert STANDIN_HEADER in e.value.response.headers


def test_an_outage_cuts_every_link_opened_while_it_lasts(standin):
    from websockets.exceptions import ConnectionClosed

    with client(standin) as a:
        assert standin.wait_for_clients(1, 3)
        assert standin.drop_connections(keep_down_s=1.5) == 1
        with pytest.raises(ConnectionClosed):
            for _ in range(100):
                a.ws.recv(timeout=3)
    with client(standin) as b, pytest.raises(ConnectionClosed):  # opened during the outage
        for _ in range(100):
            b.ws.recv(timeout=3)
    time.sleep(max(0.0, standin.state.drop_until - time.monotonic()))  # its known end
    with client(standin) as c:  # after it, links stay up
        c.subscribe([RELIANCE], "full")
        assert c.until(lambda g: len(g.frames()) >= 3, 5)


def test_malformed_frames_for_a_while_then_whole_again(standin):
    with client(standin) as c:
        c.subscribe([RELIANCE, INFY, SBIN], "full")
        assert c.until(lambda g: g.frames(), 3)
        standin.malform_frames(0.6)

        def bad(f):
            try:
                codec.decode_frame(f, 0.0)
            except codec.MalformedFrame:
                return True
            return False

        assert c.until(lambda g: sum(bad(f) for f in g.frames()) >= 3, 3)  # every one, a while
        time.sleep(max(0.0, standin.state.malformed_until - time.monotonic()))  # its known end
        c.collect(0.2)
        assert not any(bad(f) for f in c.collect(0.6).frames())


def test_heartbeats_keep_their_schedule_while_a_big_subscription_is_encoded():
    # 3000 instruments subscribed 45 market minutes into the day: making their ticks takes
    # seconds (the day so far, then the packets). Heartbeats once waited behind that work, and
    # the client's 5 s watchdog dropped the link; they must come on their own schedule.
    with StandIn(speed=60, date=DATE, start_time="10:00", extra_instruments=3000,
                 heartbeat_s=0.5) as s, client(s) as c:
        toks = [i.instrument_token for i in s.instruments if i.tradingsymbol.startswith("SIM")]
        c.subscribe(toks, "full")
        got = c.collect(5.0)
    times = [t for t, _ in got.binary]
    assert len(times) >= 5
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert max(gaps) < 1.5, max(gaps)
