"""The instruments the stand-in trades: real Kite tokens for well-known names, plus synthetic bulk.

Tests and users subscribe by real symbols (RELIANCE, INFY, NIFTY 50...), so the built-in list uses
the tokens Kite really publishes for them (NSE: `exchange_token << 8 | 1`). Derivative contracts
roll every month on Kite, so their symbols are made for the simulated date in Kite's style
(NIFTY25DECFUT) with fixed stand-in tokens of the right segment byte. `synthetic_universe(n)`
adds up to tens of thousands of NSE-style instruments for load tests.

Each instrument also carries the market model's parameters: base price, tick rate and volatility.
"""

from __future__ import annotations

import calendar
import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from livecli.kite.protocol import SEGMENT_INDICES

CSV_COLUMNS = (
    "instrument_token", "exchange_token", "tradingsymbol", "name", "last_price", "expiry",
    "strike", "tick_size", "lot_size", "instrument_type", "segment", "exchange",
)

# Ticks per second of each liquidity tier; illiquid names trade every 10-60 s.
RATE_A, RATE_B, RATE_C, RATE_ILLIQUID = 2.0, 1.0, 0.4, 1 / 30


@dataclass(frozen=True, slots=True)
class Instrument:
    """One tradable (or index) instrument, as Kite lists it, plus the model's parameters."""

    instrument_token: int
    tradingsymbol: str
    name: str
    exchange: str
    segment: str
    instrument_type: str
    tick_size: float
    lot_size: int
    base_price: float
    rate: float = RATE_B
    volatility: float = 0.012
    expiry: date | None = None
    strike: float = 0.0

    @property
    def ticks_per_unit(self) -> int:
        """Ticks per rupee: prices are `ticks / ticks_per_unit`, exact as Kite's own decimals."""
        return round(1 / self.tick_size)

    def price(self, ticks: int) -> float:
        return ticks / self.ticks_per_unit

    @property
    def exchange_token(self) -> int:
        return self.instrument_token >> 8

    @property
    def segment_id(self) -> int:
        return self.instrument_token & 0xFF

    @property
    def is_index(self) -> bool:
        return self.segment_id == SEGMENT_INDICES

    @property
    def has_oi(self) -> bool:
        """Futures and options carry open interest; equities and indices do not."""
        return self.instrument_type in ("FUT", "CE", "PE")

    @property
    def session_exchange(self) -> str:
        """The exchange whose session hours apply (indices follow NSE)."""
        return self.exchange

    def csv_row(self) -> list[str]:
        return [
            str(self.instrument_token),
            str(self.exchange_token),
            self.tradingsymbol,
            self.name,
            "0.0",
            self.expiry.isoformat() if self.expiry else "",
            repr(float(self.strike)),
            repr(float(self.tick_size)),
            str(self.lot_size),
            self.instrument_type,
            self.segment,
            self.exchange,
        ]


# (tradingsymbol, instrument_token, name, base price, tick rate)
_NSE_EQUITIES: tuple[tuple[str, int, str, float, float], ...] = (
    ("RELIANCE", 738561, "RELIANCE INDUSTRIES", 1480.0, RATE_A),
    ("HDFCBANK", 341249, "HDFC BANK", 990.0, RATE_A),
    ("ICICIBANK", 1270529, "ICICI BANK", 1390.0, RATE_A),
    ("INFY", 408065, "INFOSYS", 1550.0, RATE_A),
    ("TCS", 2953217, "TATA CONSULTANCY SERV LT", 3120.0, RATE_A),
    ("SBIN", 779521, "STATE BANK OF INDIA", 950.0, RATE_A),
    ("BHARTIARTL", 2714625, "BHARTI AIRTEL", 2080.0, RATE_A),
    ("ITC", 424961, "ITC", 410.0, RATE_A),
    ("TATASTEEL", 895745, "TATA STEEL", 170.0, RATE_A),
    ("YESBANK", 3050241, "YES BANK", 22.5, RATE_A),
    ("IDEA", 3677697, "VODAFONE IDEA", 10.2, RATE_A),
    ("LT", 2939649, "LARSEN & TOUBRO", 3980.0, RATE_B),
    ("KOTAKBANK", 492033, "KOTAK MAHINDRA BANK", 2140.0, RATE_B),
    ("AXISBANK", 1510401, "AXIS BANK", 1240.0, RATE_B),
    ("HINDUNILVR", 356865, "HINDUSTAN UNILEVER", 2450.0, RATE_B),
    ("BAJFINANCE", 81153, "BAJAJ FINANCE", 1010.0, RATE_B),
    ("ASIANPAINT", 60417, "ASIAN PAINTS", 2880.0, RATE_B),
    ("MARUTI", 2815745, "MARUTI SUZUKI INDIA", 15900.0, RATE_B),
    ("HCLTECH", 1850625, "HCL TECHNOLOGIES", 1640.0, RATE_B),
    ("WIPRO", 969473, "WIPRO", 248.0, RATE_B),
    ("TATAMOTORS", 884737, "TATA MOTORS", 405.0, RATE_B),
    ("SUNPHARMA", 857857, "SUN PHARMACEUTICAL IND L", 1790.0, RATE_B),
    ("TITAN", 897537, "TITAN COMPANY", 3790.0, RATE_B),
    ("POWERGRID", 3834113, "POWER GRID CORP. LTD.", 282.0, RATE_B),
    ("NTPC", 2977281, "NTPC", 328.0, RATE_B),
    ("ONGC", 633601, "OIL AND NATURAL GAS CORP.", 246.0, RATE_B),
    ("COALINDIA", 5215745, "COAL INDIA", 384.0, RATE_B),
    ("ADANIPORTS", 3861249, "ADANI PORT & SEZ", 1450.0, RATE_B),
    ("ADANIENT", 6401, "ADANI ENTERPRISES", 2390.0, RATE_B),
    ("JSWSTEEL", 3001089, "JSW STEEL", 1150.0, RATE_B),
    ("HINDALCO", 348929, "HINDALCO INDUSTRIES", 805.0, RATE_B),
    ("M&M", 519937, "MAHINDRA & MAHINDRA", 3620.0, RATE_B),
    ("INDUSINDBK", 1346049, "INDUSIND BANK", 850.0, RATE_B),
    ("BPCL", 134657, "BHARAT PETROLEUM CORP LT", 352.0, RATE_B),
    ("IOC", 415745, "INDIAN OIL CORP", 166.0, RATE_B),
    ("VEDL", 784129, "VEDANTA", 498.0, RATE_B),
    ("PNB", 2730497, "PUNJAB NATIONAL BANK", 118.0, RATE_B),
    ("BANKBARODA", 1195009, "BANK OF BARODA", 282.0, RATE_B),
    ("ULTRACEMCO", 2952193, "ULTRATECH CEMENT", 11800.0, RATE_C),
    ("NESTLEIND", 4598529, "NESTLE INDIA", 1255.0, RATE_C),
    ("GRASIM", 315393, "GRASIM INDUSTRIES", 2740.0, RATE_C),
    ("BAJAJFINSV", 4268801, "BAJAJ FINSERV", 2040.0, RATE_C),
    ("BAJAJ-AUTO", 4267265, "BAJAJ AUTO", 8900.0, RATE_C),
    ("HEROMOTOCO", 345089, "HERO MOTOCORP", 5480.0, RATE_C),
    ("EICHERMOT", 232961, "EICHER MOTORS", 6950.0, RATE_C),
    ("DRREDDY", 225537, "DR. REDDY S LABORATORIES", 1260.0, RATE_C),
    ("CIPLA", 177665, "CIPLA", 1510.0, RATE_C),
    ("BRITANNIA", 140033, "BRITANNIA INDUSTRIES", 5890.0, RATE_C),
    ("TECHM", 3465729, "TECH MAHINDRA", 1490.0, RATE_C),
    ("TATACONSUM", 878593, "TATA CONSUMER PRODUCT", 1150.0, RATE_C),
    ("HDFCLIFE", 119553, "HDFC LIFE INS CO", 762.0, RATE_C),
    ("SBILIFE", 5582849, "SBI LIFE INSURANCE CO", 1950.0, RATE_C),
    ("APOLLOHOSP", 40193, "APOLLO HOSPITALS ENTER. L", 7480.0, RATE_C),
    ("DIVISLAB", 2800641, "DIVI S LABORATORIES", 6480.0, RATE_C),
    ("SHREECEM", 794369, "SHREE CEMENT", 29500.0, RATE_C),
    ("UPL", 2889473, "UPL", 690.0, RATE_C),
    ("GAIL", 1207553, "GAIL (INDIA)", 181.0, RATE_C),
    ("DLF", 3771393, "DLF", 752.0, RATE_C),
    ("BANKBEES", 2928385, "RELIANCE ETF BANK BEES", 585.0, RATE_C),
    # Illiquid names: a trade every 10-60 seconds.
    ("GANGOTRI", 3419393, "GANGOTRI TEXTILES", 3.1, 1 / 45),
    ("PDPL", 5001473, "PARENTERAL DRUGS", 52.0, 1 / 25),
    ("SSWL", 3028225, "STEEL STRIPS WHEELS", 214.0, 1 / 15),
    ("ARMANFIN", 4419329, "ARMAN FIN SERV", 1480.0, 1 / 40),
    ("INFARINDIA", 1707521, "INFAR (INDIA)", 71.0, 1 / 60),
    ("BIRLAMONEY", 3901185, "ADITYA BIRLA MONEY", 152.0, RATE_ILLIQUID),
    ("GPTINFRA", 4527361, "GPT INFRAPROJECTS", 128.0, 1 / 20),
)

NIFTY_50 = 256265
NIFTY_BANK = 260105

# Stand-in exchange tokens for the monthly contracts (Kite's real ones change every month).
_NFO_FUTURES: tuple[tuple[str, int, float, int, float], ...] = (
    # (underlying, exchange token, base price, lot size, tick rate)
    ("NIFTY", 52001, 26120.0, 75, RATE_A),
    ("BANKNIFTY", 52002, 59300.0, 35, RATE_A),
    ("RELIANCE", 52003, 1486.0, 500, RATE_B),
    ("INFY", 52004, 1556.0, 400, RATE_B),
)
_CDS_TOKEN = (60001 << 8) | 3
_MCX_TOKEN = (61001 << 8) | 7


def _last_weekday_of_month(year: int, month: int, weekday: int) -> date:
    last = date(year, month, calendar.monthrange(year, month)[1])
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def _monthly_expiry(day: date, weekday: int) -> date:
    """The contract month's expiry on or after `day`: the last `weekday` of the month."""
    exp = _last_weekday_of_month(day.year, day.month, weekday)
    if exp < day:
        y, m = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
        exp = _last_weekday_of_month(y, m, weekday)
    return exp


def _fut_symbol(underlying: str, expiry: date) -> str:
    return f"{underlying}{expiry:%y}{calendar.month_abbr[expiry.month].upper()}FUT"


def builtin_universe(day: date) -> list[Instrument]:
    """The built-in instruments, derivative symbols made for the contract month of `day`."""
    out: list[Instrument] = []
    for sym, token, name, price, rate in _NSE_EQUITIES:
        tick = 0.01 if price < 100 else 0.05
        out.append(Instrument(token, sym, name, "NSE", "NSE", "EQ", tick, 1, price, rate, 0.014))
    out.append(Instrument(NIFTY_50, "NIFTY 50", "NIFTY 50", "NSE", "INDICES", "EQ", 0.05, 0,
                          26050.0, 1.0, 0.008))
    out.append(Instrument(NIFTY_BANK, "NIFTY BANK", "NIFTY BANK", "NSE", "INDICES", "EQ", 0.05, 0,
                          59200.0, 1.0, 0.009))
    # NSE monthly derivatives expire on the last Tuesday of the month (since September 2025).
    nfo_exp = _monthly_expiry(day, calendar.TUESDAY)
    for und, etok, price, lot, rate in _NFO_FUTURES:
        out.append(Instrument((etok << 8) | 2, _fut_symbol(und, nfo_exp), und, "NFO", "NFO-FUT",
                              "FUT", 0.1 if und in ("NIFTY", "BANKNIFTY") else 0.05, lot, price,
                              rate, 0.011, nfo_exp))
    cds_exp = _monthly_expiry(day, calendar.FRIDAY) - timedelta(days=2)
    if cds_exp < day:
        cds_exp = _monthly_expiry(cds_exp + timedelta(days=7), calendar.FRIDAY) - timedelta(days=2)
    out.append(Instrument(_CDS_TOKEN, _fut_symbol("USDINR", cds_exp), "USDINR", "CDS", "CDS-FUT",
                          "FUT", 0.0025, 1, 88.75, RATE_B, 0.002, cds_exp))
    mcx_exp = _monthly_expiry(day, calendar.FRIDAY) - timedelta(days=10)
    if mcx_exp < day:
        mcx_exp = _monthly_expiry(mcx_exp + timedelta(days=14), calendar.FRIDAY) - timedelta(days=10)
    out.append(Instrument(_MCX_TOKEN, _fut_symbol("CRUDEOIL", mcx_exp), "CRUDEOIL", "MCX",
                          "MCX-FUT", "FUT", 1.0, 100, 5310.0, RATE_B, 0.02, mcx_exp))
    return out


SYNTHETIC_BASE_EXCHANGE_TOKEN = 200_000  # far above the built-ins' exchange tokens


def synthetic_universe(n: int, seed: int = 1) -> list[Instrument]:
    """`n` NSE-style equities SIM00001... for load tests: tokens `(200000 + i) << 8 | 1`.

    A fifth tick like liquid names, half a few times a minute, the rest rarely, so a load test sees
    the mix of a real watchlist. Parameters depend only on `i` and `seed`.
    """
    if n < 0 or n > 500_000:
        raise ValueError(f"synthetic universe size must be 0..500000, got {n}")
    import numpy as np

    rng = np.random.default_rng([seed, 0x5E7])
    prices = np.round(np.exp(rng.uniform(np.log(20), np.log(5000), n)), 1)
    tiers = rng.uniform(0, 1, n)
    out = []
    for i in range(n):
        t = tiers[i]
        rate = RATE_B if t < 0.2 else (RATE_C if t < 0.7 else 1 / (10 + 50 * (t - 0.7) / 0.3))
        price = float(prices[i])
        out.append(Instrument(
            ((SYNTHETIC_BASE_EXCHANGE_TOKEN + i) << 8) | 1, f"SIM{i + 1:05d}",
            f"SIMULATED {i + 1}", "NSE", "NSE", "EQ", 0.01 if price < 100 else 0.05, 1, price,
            rate, 0.015,
        ))
    return out


def instruments_csv(instruments: Iterable[Instrument]) -> str:
    """Kite's instrument dump: the 12 columns of `/instruments`, header first, CRLF-free."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for ins in instruments:
        w.writerow(ins.csv_row())
    return buf.getvalue()
