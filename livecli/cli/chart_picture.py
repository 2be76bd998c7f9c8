"""A candlestick picture file (PNG or SVG) with volume: mplfinance over matplotlib.

Imported only by `livecli chart --output`, so the plotting stack (matplotlib is large) never
slows any other command. The non-interactive Agg backend: no display is needed or opened.
Times on the axis are IST (the candles' starts shifted to +05:30, shown without a zone).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from livecli.core.candles import Candle
from livecli.core.timeutil import IST_OFFSET_S

UP, DOWN = "#1a9850", "#d73027"  # the dashboard's green and red


def candle_frame(candles: Sequence[Candle]) -> Any:
    """The candles as the DataFrame mplfinance plots: IST start times, OHLCV columns."""
    import pandas as pd

    idx = pd.to_datetime([c.start + IST_OFFSET_S for c in candles], unit="s")
    return pd.DataFrame(
        {"Open": [c.open for c in candles], "High": [c.high for c in candles],
         "Low": [c.low for c in candles], "Close": [c.close for c in candles],
         "Volume": [c.volume for c in candles]},
        index=pd.DatetimeIndex(idx, name="IST"),
    )


def write_chart(candles: Sequence[Candle], path: Path, *, title: str, tick_size: float) -> None:
    import logging

    import matplotlib

    matplotlib.use("Agg")
    # A missing font weight is matplotlib's business, not a line on the user's stderr.
    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)
    import mplfinance as mpf
    from matplotlib.ticker import FuncFormatter

    from livecli.dashboard.chart import fmt_tick

    df = candle_frame(candles)
    colors = mpf.make_marketcolors(up=UP, down=DOWN, edge="inherit", wick="inherit",
                                   volume="inherit")
    style = mpf.make_mpf_style(base_mpf_style="classic", marketcolors=colors, gridstyle=":",
                               facecolor="white", figcolor="white", y_on_right=False)
    # mplfinance paints a candle that closed at its open as down (`open < close` is up); livecli
    # calls it up everywhere (the dashboard, the terminal chart), so each candle's colour is given.
    faces = [UP if c.close >= c.open else DOWN for c in candles]
    has_volume = bool((df["Volume"] > 0).any())
    hi, lo = df["High"].max(), df["Low"].min()
    fig, axes = mpf.plot(
        df, type="candle", style=style, volume=has_volume, returnfig=True,
        title=f"{title}  (times IST)", ylabel="price", ylabel_lower="volume" if has_volume else "",
        figsize=(11, 6), datetime_format="%H:%M", xrotation=0, marketcolor_overrides=faces,
        hlines=dict(hlines=[float(hi), float(lo)], colors=["#999999"], linestyle=":",
                    linewidths=0.8),
    )
    if has_volume:  # the volume bars take the same rule (mplfinance has no override for them)
        for bar, face in zip(axes[2].patches, faces, strict=True):
            bar.set_facecolor(face)
            bar.set_edgecolor(face)
    axes[0].yaxis.set_major_formatter(FuncFormatter(lambda p, _pos: fmt_tick(p, tick_size)))
    fmt = path.suffix.lower().lstrip(".")
    # The candles drawn, in the file's own text metadata, so what a picture shows can be checked
    # against the store (and read back by anyone) without reading pixels.
    about = json.dumps([[c.start, c.open, c.high, c.low, c.close, c.volume] for c in candles])
    fig.savefig(path, format=fmt, dpi=100,
                metadata={"Title": title, "Description": f"livecli candles {about}"})
    import matplotlib.pyplot as plt

    plt.close(fig)
