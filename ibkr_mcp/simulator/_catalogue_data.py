"""Static rows of the default simulator catalogue (real IB conIds where known)."""

from __future__ import annotations

from typing import Final

# (symbol, conId, primary exchange, long name, stock type, industry, category, subcategory,
#  base price, annual volatility, average daily volume)
STOCK_ROWS: Final[tuple[tuple[str, int, str, str, str, str, str, str, str, float, int], ...]] = (
    ("AAPL", 265598, "NASDAQ", "APPLE INC", "COMMON",
     "Technology", "Computers", "Computers", "265.00", 0.26, 55_000_000),
    ("MSFT", 272093, "NASDAQ", "MICROSOFT CORP", "COMMON",
     "Technology", "Software", "Applications Software", "510.00", 0.24, 22_000_000),
    ("AMZN", 3691937, "NASDAQ", "AMAZON.COM INC", "COMMON",
     "Communications", "Internet", "E-Commerce/Products", "235.00", 0.32, 45_000_000),
    ("NVDA", 4815747, "NASDAQ", "NVIDIA CORP", "COMMON",
     "Technology", "Semiconductors", "Electronic Compo-Semicon", "190.00", 0.45, 180_000_000),
    ("GOOGL", 208813719, "NASDAQ", "ALPHABET INC-CL A", "COMMON",
     "Communications", "Internet", "Web Portals/ISP", "290.00", 0.30, 35_000_000),
    ("META", 107113386, "NASDAQ", "META PLATFORMS INC-CLASS A", "COMMON",
     "Communications", "Internet", "Internet Content-Entmnt", "690.00", 0.35, 14_000_000),
    ("TSLA", 76792991, "NASDAQ", "TESLA INC", "COMMON",
     "Consumer, Cyclical", "Auto Manufacturers", "Auto-Cars/Light Trucks", "430.00", 0.60,
     95_000_000),
    ("IBM", 8314, "NYSE", "INTL BUSINESS MACHINES CORP", "COMMON",
     "Technology", "Computers", "Computer Services", "295.00", 0.25, 4_500_000),
    ("JPM", 1520593, "NYSE", "JPMORGAN CHASE & CO", "COMMON",
     "Financial", "Banks", "Diversified Banking Inst", "305.00", 0.24, 9_000_000),
    ("XOM", 13977, "NYSE", "EXXON MOBIL CORP", "COMMON",
     "Energy", "Oil&Gas", "Oil Comp-Integrated", "115.00", 0.24, 15_000_000),
    ("KO", 8894, "NYSE", "COCA-COLA CO/THE", "COMMON",
     "Consumer, Non-cyclical", "Beverages", "Beverages-Non-alcoholic", "70.00", 0.16, 14_000_000),
    ("INTC", 270639, "NASDAQ", "INTEL CORP", "COMMON",
     "Technology", "Semiconductors", "Electronic Compo-Semicon", "38.00", 0.50, 90_000_000),
    ("AMD", 4391, "NASDAQ", "ADVANCED MICRO DEVICES", "COMMON",
     "Technology", "Semiconductors", "Electronic Compo-Semicon", "240.00", 0.50, 55_000_000),
    ("NFLX", 15124833, "NASDAQ", "NETFLIX INC", "COMMON",
     "Communications", "Internet", "Internet Content-Entmnt", "110.00", 0.38, 40_000_000),
    ("BAC", 10098, "NYSE", "BANK OF AMERICA CORP", "COMMON",
     "Financial", "Banks", "Diversified Banking Inst", "52.00", 0.26, 38_000_000),
    ("WMT", 13824, "NASDAQ", "WALMART INC", "COMMON",
     "Consumer, Non-cyclical", "Retail", "Retail-Discount", "105.00", 0.20, 17_000_000),
    ("JNJ", 8719, "NYSE", "JOHNSON & JOHNSON", "COMMON",
     "Consumer, Non-cyclical", "Pharmaceuticals", "Medical-Drugs", "200.00", 0.17, 8_000_000),
    ("V", 49462172, "NYSE", "VISA INC-CLASS A SHARES", "COMMON",
     "Financial", "Diversified Finan Serv", "Finance-Credit Card", "345.00", 0.22, 7_000_000),
    ("DIS", 6459, "NYSE", "WALT DISNEY CO/THE", "COMMON",
     "Communications", "Media", "Multimedia", "115.00", 0.28, 9_000_000),
    ("CSCO", 268084, "NASDAQ", "CISCO SYSTEMS INC", "COMMON",
     "Communications", "Telecommunications", "Networking Products", "72.00", 0.24, 20_000_000),
    ("ORCL", 272800, "NYSE", "ORACLE CORP", "COMMON",
     "Technology", "Software", "Enterprise Software/Serv", "220.00", 0.45, 20_000_000),
    ("GS", 4627828, "NYSE", "GOLDMAN SACHS GROUP INC", "COMMON",
     "Financial", "Diversified Finan Serv", "Finance-Invest Bnkr/Brkr", "800.00", 0.28,
     2_500_000),
    ("F", 9599491, "NYSE", "FORD MOTOR CO", "COMMON",
     "Consumer, Cyclical", "Auto Manufacturers", "Auto-Cars/Light Trucks", "13.00", 0.35,
     60_000_000),
    ("SPY", 756733, "ARCA", "SPDR S&P 500 ETF TRUST", "ETF",
     "Funds", "Equity Fund", "Large Cap", "680.00", 0.17, 70_000_000),
    ("QQQ", 320227571, "NASDAQ", "INVESCO QQQ TRUST SERIES 1", "ETF",
     "Funds", "Equity Fund", "Large Cap", "610.00", 0.21, 45_000_000),
    ("IWM", 9579970, "ARCA", "ISHARES RUSSELL 2000 ETF", "ETF",
     "Funds", "Equity Fund", "Small Cap", "245.00", 0.22, 30_000_000),
    ("DIA", 73128548, "ARCA", "SPDR DJIA TRUST", "ETF",
     "Funds", "Equity Fund", "Large Cap", "475.00", 0.15, 3_500_000),
    ("GLD", 51529211, "ARCA", "SPDR GOLD SHARES", "ETF",
     "Funds", "Commodity Fund", "Precious Metals", "385.00", 0.18, 9_000_000),
    ("TLT", 15547841, "NASDAQ", "ISHARES 20+ YEAR TREASURY BO", "ETF",
     "Funds", "Debt Fund", "Government", "90.00", 0.14, 35_000_000),
    ("XLF", 4215220, "ARCA", "FINANCIAL SELECT SECTOR SPDR", "ETF",
     "Funds", "Equity Fund", "Financial", "53.00", 0.20, 40_000_000),
)  # fmt: skip

# (base currency, quote currency, conId, long name, min tick, base price, annual volatility)
FX_ROWS: Final[tuple[tuple[str, str, int, str, str, str, float], ...]] = (
    ("EUR", "USD", 12087792, "European Monetary Union Euro", "0.00005", "1.16000", 0.07),
    ("GBP", "USD", 12087797, "British pound", "0.00005", "1.33000", 0.08),
    ("USD", "JPY", 15016059, "US dollar", "0.005", "152.000", 0.09),
    ("AUD", "USD", 14433401, "Australian dollar", "0.00005", "0.66000", 0.10),
    ("USD", "CAD", 15016062, "US dollar", "0.00005", "1.39000", 0.06),
    ("USD", "CHF", 12087820, "US dollar", "0.00005", "0.80000", 0.08),
)

STOCK_ORDER_TYPES: Final = (
    "ACTIVETIM,AD,ADJUST,ALERT,ALGO,ALLOC,AON,AVGCOST,BASKET,BENCHPX,CASHQTY,COND,CONDORDER,"
    "DARKONLY,DARKPOLL,DAY,DEACT,DEACTDIS,DEACTEOD,DIS,DUR,GAT,GTC,GTD,GTT,HID,IBKRATS,ICE,IMB,"
    "IOC,LIT,LMT,LOC,MIDPX,MIT,MKT,MOC,MTL,NGCOMB,NODARK,NONALGO,OCA,OPG,OPGREROUT,PEGBENCH,"
    "PEGMID,POSTATS,POSTONLY,PREOPGRTH,PRICECHK,REL,REL2MID,RELPCTOFS,RPI,RTH,SCALE,SCALEODD,"
    "SCALERST,SIZECHK,SMARTSTG,SNAPMID,SNAPMKT,SNAPREL,STP,STPLMT,SWEEP,TRAIL,TRAILLIT,TRAILLMT,"
    "TRAILMIT,WHATIF"
)
FX_ORDER_TYPES: Final = (
    "ACTIVETIM,AD,ADJUST,ALERT,ALGO,ALLOC,AVGCOST,BASKET,CASHQTY,COND,CONDORDER,DAY,DEACT,"
    "DEACTDIS,DEACTEOD,GAT,GTC,GTD,GTT,HID,IOC,LIT,LMT,MIT,MKT,NONALGO,OCA,REL,RELPCTOFS,SCALE,"
    "SCALERST,STP,STPLMT,TRAIL,TRAILLIT,TRAILLMT,TRAILMIT,WHATIF"
)
STOCK_VALID_EXCHANGES: Final = (
    "SMART,AMEX,NYSE,CBOE,PHLX,ISE,CHX,ARCA,ISLAND,DRCTEDGE,BEX,BATS,EDGEA,BYX,IEX,EDGX,FOXRIVER,"
    "PEARL,NYSENAT,LTSE,MEMX,IBEOS,OVERNIGHT,TPLUS0,PSX"
)
FX_VALID_EXCHANGES: Final = "IDEALPRO"
