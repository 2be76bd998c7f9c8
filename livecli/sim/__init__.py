"""The local Kite stand-in: a simulated market behind Kite's real ticker and REST protocols.

`StandIn` starts both servers on loopback; kiteconnect's own KiteTicker and KiteConnect (and so
livecli) talk to it unchanged. Heavy modules (numpy, websockets) load only when it is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from livecli.sim.standin import StandIn

__all__ = ["StandIn"]


def __getattr__(name: str) -> Any:
    if name == "StandIn":
        from livecli.sim.standin import StandIn

        return StandIn
    raise AttributeError(name)
