"""NATS subjects and message ids, and the CLI's checks of --publish / --attach (no server)."""

from __future__ import annotations

from livecli.bus.subjects import candle_msg_id, candle_subject, symbol_filters, tick_subject
from tests.cli import assert_one_line_error, run
from tests.nats_server import free_port


def test_symbols_become_subject_tokens_in_the_documented_way():
    assert tick_subject("NSE", "NIFTY 50") == "livecli.ticks.NSE.NIFTY_50"
    assert candle_subject("5min", "NSE", "NIFTY 50") == "livecli.candles.5min.NSE.NIFTY_50"
    assert tick_subject("NSE", "BAJAJ-AUTO") == "livecli.ticks.NSE.BAJAJ-AUTO"
    assert tick_subject("NSE", "M&M") == "livecli.ticks.NSE.M&M"
    # Wildcards, separators and control characters never reach a subject.
    assert tick_subject("NSE", "A.B*C>D\tE") == "livecli.ticks.NSE.A_B_C_D_E"
    assert symbol_filters("ticks", "nse:nifty 50") == "livecli.ticks.NSE.NIFTY_50"
    assert symbol_filters("candles", "INFY") == "livecli.candles.*.*.INFY"


def test_a_closed_candle_has_one_message_id_whoever_publishes_it():
    a = candle_msg_id(738561, "5min", 1765338300.0)
    assert a == candle_msg_id(738561, "5min", 1765338300)
    assert a != candle_msg_id(738561, "1min", 1765338300)
    assert a != candle_msg_id(738562, "5min", 1765338300)
    # History's candle for a minute replaces the live one: never taken for a repeat of it.
    assert a != candle_msg_id(738561, "5min", 1765338300, "history")
    assert a == candle_msg_id(738561, "5min", 1765338300, "live")


def test_a_publish_url_that_is_not_nats_is_a_usage_error(tmp_path):
    proc = run(["stream", "RELIANCE", "--sim", "--jsonl", "--duration", "1",
                "--publish", "http://127.0.0.1:4222"], tmp_path)
    assert_one_line_error(proc, 2, "--publish", "nats://HOST:4222")
    assert proc.stdout == ""


def test_a_nats_server_that_is_not_there_is_a_connection_error_before_streaming(tmp_path):
    url = f"nats://127.0.0.1:{free_port()}"
    proc = run(["stream", "RELIANCE", "--sim", "--jsonl", "--duration", "1", "--publish", url],
               tmp_path, timeout=60)
    assert_one_line_error(proc, 14, url, "nats-server")
    assert proc.stdout == ""
    proc = run(["stream", "--attach", url, "--jsonl", "--duration", "1"], tmp_path)
    assert_one_line_error(proc, 14, url)


def test_stream_without_symbols_or_attach_says_what_to_give(tmp_path):
    proc = run(["stream", "--sim"], tmp_path)
    assert_one_line_error(proc, 2, "missing argument", "--attach")


def test_status_attach_to_a_nats_feed_says_where_its_status_is(tmp_path):
    proc = run(["status", "--attach", "nats://127.0.0.1:4222"], tmp_path)
    assert_one_line_error(proc, 2, "livecli.status", "--attach nats://127.0.0.1:4222")
