"""Symbol resolution: `InstrumentMaster.resolve` for 9000 symbols, Kite's limit per api_key.

The master is loaded from the local stand-in with 9000 extra synthetic NSE instruments (over
loopback, once, untimed); then every NSE symbol is resolved, best of 5, in CPU seconds. The
baseline in the same run is the old duplicate check (a membership test in the list of found
instruments, quadratic: 9 to 24 CPU-s at 9000 on the development machine), timed on the same
symbols. Run: .venv/bin/python bench/instruments.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from livecli.kite.instruments import InstrumentMaster, parse_symbol
from livecli.sim import StandIn


def quadratic_resolve(master: InstrumentMaster, symbols: list[str]) -> list:
    """The resolve loop as it was: `inst not in found` scans the list for every symbol."""
    found: list = []
    for text in symbols:
        exchange, symbol = parse_symbol(text)
        inst = master._lookup(exchange, symbol)
        if inst is not None and inst not in found:
            found.append(inst)
    return found


def best_cpu(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return best


def main() -> None:
    with StandIn(extra_instruments=9000, seed=1) as s, tempfile.TemporaryDirectory() as cache:
        master = InstrumentMaster(s.api_key, s.access_token, s.api_url, Path(cache))
        symbols = [i.tradingsymbol for i in master.load("NSE")][:9000]
    assert len(master.resolve(symbols)) == len(symbols) == 9000
    ours = best_cpu(lambda: master.resolve(symbols), 5)
    old = best_cpu(lambda: quadratic_resolve(master, symbols), 1)
    print(f"resolve 9000 symbols: livecli {ours:.3f} CPU-s, list-membership check {old:.2f} CPU-s "
          f"({old / ours:,.0f}x)")


if __name__ == "__main__":
    main()
