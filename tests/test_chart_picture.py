"""`livecli chart --output`'s picture: each candle and its volume bar in livecli's colours.

The CI found a picture whose last candle was red while the store said up: it had closed at its
open, and mplfinance paints such a candle down. These candles put one (and one that closed
below its open) between rising ones, so the rule is checked on purpose, not by chance.
"""

from __future__ import annotations

import pytest

from livecli.core.candles import Candle
from tests.chart_pixels import colour_runs

pytest.importorskip("mplfinance")

T0 = 1_765_338_300  # 2025-12-10 09:15 IST


def _candle(i: int, o: float, c: float) -> Candle:
    return Candle(instrument_token=738561, interval_min=1, start=T0 + 60 * i, open=o,
                  high=max(o, c) + 1, low=min(o, c) - 1, close=c, volume=1000 + 10 * i, oi=None,
                  ticks=5, closed=True)


def test_a_candle_that_closed_at_its_open_is_up_in_the_price_and_volume_panels(tmp_path):
    from livecli.cli.chart_picture import write_chart

    candles = [_candle(0, 100, 102), _candle(1, 102, 102), _candle(2, 102, 101),
               _candle(3, 101, 101), _candle(4, 101, 104)]
    png = tmp_path / "c.png"
    write_chart(candles, png, title="NSE:RELIANCE 1min", tick_size=0.05)
    want = ["up" if c.close >= c.open else "down" for c in candles]
    assert want == ["up", "up", "down", "up", "up"]
    # White space parts the candles, so each is one run of columns.
    assert colour_runs(png, 0.12, 0.58) == want  # the price panel
    assert colour_runs(png, 0.66, 0.85) == want  # the volume panel, the same rule
