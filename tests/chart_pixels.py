"""Reading a candlestick picture's colours back: the runs of green and red columns in a band.

A picture is checked by what a person sees in it, left to right: one coloured run per candle,
green where it closed at or above its open, red below. Shared by the chart-picture tests.
"""

from __future__ import annotations

from pathlib import Path


def colour_runs(png: Path, top: float, bottom: float) -> list[str]:
    """The 'up'/'down' runs of columns between the fractions `top` and `bottom` of the height."""
    from PIL import Image

    im = Image.open(png).convert("RGB")
    w, h = im.size
    px = im.load()

    def hue(x: int) -> str | None:
        for y in range(int(h * top), int(h * bottom)):
            r, g, b = px[x, y]
            if g > r + 40 and g > b + 20:
                return "up"
            if r > g + 60 and r > b + 60:
                return "down"
        return None

    runs: list[str] = []
    prev = None
    for x in range(w):
        cur = hue(x)
        if cur is not None and cur != prev:
            runs.append(cur)
        prev = cur
    return runs
