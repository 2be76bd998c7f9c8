"""Regenerate examples/sample_ticks.csv from the stand-in's simulated market (seed 1).

    .venv/bin/python examples/make_sample_ticks.py

The sample is what `livecli stream --record` would have stored for RELIANCE, INFY and the
NIFTY 50 index over the first 15 minutes of 2025-01-06, written in the tick-file format that
`livecli candles --ticks` reads.
"""

from __future__ import annotations

from datetime import date, time
from pathlib import Path

import pandas as pd

from livecli.core.timeutil import at_ist, day_of, iso
from livecli.sim.market import Market
from livecli.sim.universe import builtin_universe

DAY = date(2025, 1, 6)
SYMBOLS = ("RELIANCE", "INFY", "NIFTY 50")
OUT = Path(__file__).with_name("sample_ticks.csv")


def main() -> None:
    universe = builtin_universe(DAY)
    market = Market(universe, seed=1)
    until = at_ist(DAY, time(9, 30))
    rows = []
    for inst in universe:
        if inst.tradingsymbol not in SYMBOLS:
            continue
        block = market.day_ticks(inst.instrument_token, day_of(DAY), until=until)
        cols = market.tick_columns([block])
        for tok, t, px, vol, hi, lo in zip(cols.token, cols.time, cols.price, cols.volume,
                                           cols.day_high, cols.day_low, strict=True):
            rows.append({
                "instrument_token": int(tok), "exchange_timestamp": iso(float(t)),
                "last_price": round(float(px), 2),
                "volume_traded": None if vol < 0 else int(vol),
                "tradingsymbol": inst.tradingsymbol, "exchange": inst.exchange,
                "oi": None, "high": round(float(hi), 2), "low": round(float(lo), 2),
            })
    df = pd.DataFrame(rows).sort_values("exchange_timestamp", kind="stable")
    df["volume_traded"] = df["volume_traded"].astype("Int64")
    df.to_csv(OUT, index=False)
    print(f"wrote {len(df)} ticks to {OUT}")


if __name__ == "__main__":
    main()
