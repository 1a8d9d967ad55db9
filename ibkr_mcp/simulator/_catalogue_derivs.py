"""Data rows for indices, futures roots and listed options of the simulated catalogue.

Index conIds are IB's own where recorded (0: a stable synthetic one). Futures and option
conIds are synthetic and encode the contract (see ``derivatives.py``).
"""

from __future__ import annotations

from typing import Final

# (symbol, IB conId or 0, exchange, long name, min tick, base level, annual volatility)
INDICES: Final[tuple[tuple[str, int, str, str, str, str, float], ...]] = (
    ("SPX", 416904, "CBOE", "S&P 500 Stock Index", "0.01", "6800.00", 0.16),
    ("NDX", 416843, "NASDAQ", "NASDAQ 100 Stock Index", "0.01", "25000.00", 0.20),
    ("RUT", 416888, "RUSSELL", "Russell 2000 Stock Index", "0.01", "2450.00", 0.21),
    ("VIX", 13455763, "CBOE", "CBOE Volatility Index", "0.01", "17.00", 0.90),
    ("DJX", 0, "CBOE", "Dow Jones Industrial Average/100", "0.01", "475.00", 0.15),
)

#: IB lists no order types for an index: it is not tradable.
INDEX_ORDER_TYPES: Final = ""

#: Futures cycles: month numbers a root lists.
QUARTERLY: Final = (3, 6, 9, 12)
MONTHLY: Final = tuple(range(1, 13))
GOLD_MONTHS: Final = (2, 4, 6, 8, 10, 12)
SILVER_MONTHS: Final = (3, 5, 7, 9, 12)
#: IB/CME month codes.
MONTH_CODES: Final = "FGHJKMNQUVXZ"

# Last-trade rules (see ``_futures.last_trade_day``):
#   "3fri": third Friday of the contract month (equity index futures)
#   "cl":   three business days before the 25th of the month before the contract month
#   "ng":   three business days before the first day of the contract month
#   "3lbd": third-last business day of the contract month (COMEX metals)
#   "7bl":  seventh business day before the last business day (CBOT Treasuries)
#   "fx":   two business days before the third Wednesday (CME currencies)

# (IB symbol, trading class, exchange, multiplier, min tick, long name, cycle, rule,
#  base price, annual volatility, listed months ahead, underlying index symbol or "")
FUTURES: Final[
    tuple[tuple[str, str, str, str, str, str, tuple[int, ...], str, str, float, int, str], ...]
] = (
    ("ES", "ES", "CME", "50", "0.25", "E-mini S&P 500", QUARTERLY, "3fri",
     "6800.00", 0.16, 15, "SPX"),
    ("MES", "MES", "CME", "5", "0.25", "Micro E-Mini S&P 500 Stock Price Index", QUARTERLY,
     "3fri", "6800.00", 0.16, 15, "SPX"),
    ("NQ", "NQ", "CME", "20", "0.25", "E-mini NASDAQ 100", QUARTERLY, "3fri",
     "25000.00", 0.20, 15, "NDX"),
    ("MNQ", "MNQ", "CME", "2", "0.25", "Micro E-Mini Nasdaq-100 Index", QUARTERLY, "3fri",
     "25000.00", 0.20, 15, "NDX"),
    ("YM", "YM", "CBOT", "5", "1", "Mini Sized Dow Jones Industrial Average $5", QUARTERLY,
     "3fri", "47500", 0.15, 15, "DJX"),
    ("RTY", "RTY", "CME", "50", "0.1", "E-mini Russell 2000 Index", QUARTERLY, "3fri",
     "2450.0", 0.21, 15, "RUT"),
    ("CL", "CL", "NYMEX", "1000", "0.01", "Light Sweet Crude Oil", MONTHLY, "cl",
     "62.00", 0.35, 18, ""),
    ("NG", "NG", "NYMEX", "10000", "0.001", "Henry Hub Natural Gas", MONTHLY, "ng",
     "4.200", 0.55, 18, ""),
    ("GC", "GC", "COMEX", "100", "0.1", "Gold", GOLD_MONTHS, "3lbd", "4000.0", 0.18, 14, ""),
    ("SI", "SI", "COMEX", "5000", "0.005", "Silver", SILVER_MONTHS, "3lbd",
     "48.000", 0.30, 14, ""),
    ("ZN", "ZN", "CBOT", "1000", "0.015625", "10 Year US Treasury Note", QUARTERLY, "7bl",
     "112.5", 0.06, 9, ""),
    ("ZB", "ZB", "CBOT", "1000", "0.03125", "30 Year US Treasury Bond", QUARTERLY, "7bl",
     "117.0", 0.11, 9, ""),
    ("EUR", "6E", "CME", "125000", "0.00005", "European Monetary Union Euro", QUARTERLY, "fx",
     "1.16500", 0.07, 12, ""),
)  # fmt: skip

#: Symbols IB users also type for a root (CME's code for the euro future is 6E).
FUTURE_ALIASES: Final = {"6E": "EUR"}
#: Annual carry (financing minus yield) spreading the months of a root apart: month prices are
#: the root's path times exp(carry * years from FUTURE_CARRY_REF to the month's last day).
FUTURE_CARRY: Final = {"ES": 0.015, "MES": 0.015, "NQ": 0.015, "MNQ": 0.015, "YM": 0.015,
                       "RTY": 0.015, "CL": -0.04, "NG": 0.06, "GC": 0.04, "SI": 0.04,
                       "ZN": -0.01, "ZB": -0.01, "EUR": 0.018}  # fmt: skip

FUTURE_ORDER_TYPES: Final = (
    "ACTIVETIM,AD,ADJUST,ALERT,ALGO,ALLOC,AVGCOST,BASKET,COND,CONDORDER,DAY,DEACT,DEACTDIS,"
    "DEACTEOD,GAT,GTC,GTD,GTT,HID,ICE,IOC,LIT,LMT,LTH,MIT,MKT,MTL,NGCOMB,NONALGO,OCA,SCALE,"
    "SCALERST,SNAPMID,SNAPMKT,SNAPREL,STP,STPLMT,TRAIL,TRAILLIT,TRAILLMT,TRAILMIT,WHATIF"
)
OPTION_ORDER_TYPES: Final = (
    "ACTIVETIM,AD,ADJUST,ALERT,ALLOC,AVGCOST,BASKET,COND,CONDORDER,DAY,DEACT,DEACTDIS,DEACTEOD,"
    "DIS,GAT,GTC,GTD,GTT,HID,ICE,IOC,LIT,LMT,MIT,MKT,MTL,NGCOMB,NONALGO,OCA,OPENCLOSE,PEGMIDVOL,"
    "PEGMKTVOL,PEGPRMVOL,PEGSRFVOL,POSTONLY,PRICECHK,REL,REL2MID,RELPCTOFS,RELSTK,SCALE,"
    "SCALERST,SIZECHK,SMARTSTG,SNAPMID,SNAPMKT,SNAPREL,STP,STPLMT,TRAIL,TRAILLIT,TRAILLMT,"
    "TRAILMIT,VOLAT,WHATIF"
)
OPTION_EXCHANGES: Final = (
    "SMART,AMEX,CBOE,PHLX,PSE,ISE,BOX,BATS,NASDAQOM,CBOE2,NASDAQBX,MIAX,GEMINI,EDGX,MERCURY,"
    "PEARL,EMERALD,MEMX,IBUSOPT"
)
#: Exchanges a stock option chain is reported for by reqSecDefOptParams (each one row).
OPTION_CHAIN_EXCHANGES: Final = ("SMART", "AMEX", "CBOE", "ISE", "PHLX", "BOX", "MIAX")
INDEX_OPTION_EXCHANGES: Final = "SMART,CBOE"
INDEX_OPTION_CHAIN_EXCHANGES: Final = ("SMART", "CBOE")

#: Option model: risk-free rate, dividend yields by underlying kind.
RATE: Final = 0.04
DIVIDEND_YIELD: Final = {"STK": 0.012, "ETF": 0.013, "IND": 0.013}
#: Vol surface shape: skew (per unit of log-moneyness over sqrt(T)) and smile curvature;
#: indices skew harder than single stocks. The seed perturbs both per underlying.
SKEW: Final = {"IND": 0.28, "STK": 0.12}
SMILE: Final = 0.06
#: Option expiries listed: this many weekly Fridays, then monthly third Fridays this far out.
WEEKLY_COUNT: Final = 8
MONTHLY_COUNT: Final = 15
