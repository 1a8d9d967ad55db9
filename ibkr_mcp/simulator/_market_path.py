"""Counter-based, order-independent log-price path of one instrument.

Layers, each a pure function of (seed, conId, time):

* yearly levels: ``log(base_price) + 0.35 * vol * z`` with ``z`` clipped to +-2.5, so prices
  stay realistic for any year;
* daily anchors (the close of each trade date): a Brownian bridge between consecutive yearly
  levels over that year's weekdays;
* between two anchors: a Brownian bridge in calendar time built from a minute-level walk
  (one bulk random stream per segment, cached) and, inside each minute, a per-second walk from
  one 64-byte blake2b digest, conditioned on the minute's total.

Segments run from anchor boundary to anchor boundary (``t0 <= k < t1``); the bridge is pinned
so that second ``t0`` and the anchor second ``t1 - 1`` carry the anchors (the latter to within
a fraction of a one-second step, see ``_coefficients``; the close is whatever ``x_at`` says).
"""

from __future__ import annotations

import math
import random
import sys
from array import array
from datetime import date
from hashlib import blake2b
from itertools import accumulate, repeat
from operator import add, sub
from statistics import NormalDist
from struct import Struct
from typing import TypeVar

from ibkr_mcp.simulator._market_calendar import FX, Session, segment_for

_PACK = Struct("<Bqq").pack
_TAG_YEAR_LEVEL = 1
_TAG_YEAR_STEPS = 2
_TAG_SEGMENT = 3
_TAG_MINUTE = 4
_TAG_SPREAD = 5
_TAG_SIZES = 6
_TAG_VOLUME = 7

_BYTE_SD = math.sqrt((256**2 - 1) / 12)
# Two uniform 16-bit draws summed: a cheap, symmetric, near-normal step.
_PAIR_MEAN = 65535
_PAIR_SD = math.sqrt(2 * (65536**2 - 1) / 12)
_NORMAL = NormalDist()
_SECONDS_PER_TRADING_YEAR = 252 * 86_400
# Per-instrument memo sizes: a segment walk is ~12-35 KB, a session's marks up to ~100 KB.
_YEARS_KEPT = 64
_SEGMENTS_KEPT = 192
_SESSIONS_KEPT = 8
_MARK_STATS_KEPT = 8192
_T = TypeVar("_T")


def make_key(seed: int) -> bytes:
    """The blake2b key every draw of a model with this seed uses."""
    return blake2b(b"ibkr-mcp-sim\x00" + str(seed).encode(), digest_size=32).digest()


def _pairs(raw: bytes) -> array[int]:
    words = array("H", raw)
    if sys.byteorder == "big":
        words.byteswap()  # the stream is little-endian everywhere
    return words


def _walk(words: array[int], scale: float) -> array[float]:
    """Random walk from 0 whose steps are scaled sums of two centred 16-bit draws."""
    # All C-level iterators: segments hold thousands of steps and are built often.
    sums = accumulate(map(add, words[0::2], words[1::2]), initial=0)
    centred = map(sub, sums, range(0, _PAIR_MEAN * (len(words) // 2 + 1), _PAIR_MEAN))
    return array("d", map(scale.__mul__, centred))


def _bounded_put(cache: dict[int, _T], key: int, value: _T, limit: int) -> _T:
    if len(cache) >= limit:
        del cache[next(iter(cache))]
    cache[key] = value
    return value


class Segment:
    """Cached data of one anchor-to-anchor segment."""

    __slots__ = ("a0", "length", "slope", "t0", "t1", "w_end", "w_slope", "wm")

    def __init__(self, t0: int, t1: int, a0: float, a1: float, wm: array[float]) -> None:
        self.t0 = t0
        self.t1 = t1
        self.length = t1 - t0 - 1
        self.a0 = a0
        self.slope = (a1 - a0) / self.length
        self.wm = wm
        self.w_end = 0.0
        self.w_slope = 0.0


class SessionMarks:
    """Minute-mark log prices from a session's start, with running max/min (grown lazily)."""

    __slots__ = ("limit", "marks", "pmax", "pmin", "start")

    def __init__(self, start: int, limit: int) -> None:
        self.start = start
        self.limit = limit
        self.marks: list[float] = []
        self.pmax: list[float] = []
        self.pmin: list[float] = []


class InstrumentPath:
    """The price path of one instrument; every method is a pure function of its arguments.

    Args:
        key: ``make_key(seed)``.
        con_id: The instrument's conId (decorrelates instruments).
        kind: ``STK`` or ``CASH`` (selects the calendar).
        base_price: Level the yearly anchors revolve around.
        vol: Annualised volatility.
        adv: Average daily volume.
    """

    def __init__(
        self, key: bytes, con_id: int, kind: str, base_price: float, vol: float, adv: int
    ) -> None:
        self.key = key
        self.con_id = con_id
        self.kind = kind
        self.adv = adv
        self._log_base = math.log(base_price)
        self._sig_year = 0.35 * vol
        self._sig_day = vol / math.sqrt(252)
        self.sig_sec = vol / math.sqrt(_SECONDS_PER_TRADING_YEAR)
        self._years: dict[int, list[float]] = {}
        self._segments: dict[int, Segment] = {}
        self._sessions: dict[int, SessionMarks] = {}
        self._mark_stats: dict[tuple[int, int], tuple[float, float, float, int]] = {}
        self._x_memo: dict[int, float] = {}

    # --- random streams -------------------------------------------------------------------

    def digest(self, tag: int, idx: int, size: int = 64) -> bytes:
        """``size`` pseudo-random bytes for (tag, index)."""
        return blake2b(_PACK(tag, self.con_id, idx), digest_size=size, key=self.key).digest()

    def _bulk(self, tag: int, idx: int, n: int) -> bytes:
        seed = int.from_bytes(self.digest(tag, idx), "little")
        return random.Random(seed).randbytes(n)

    # --- daily anchors --------------------------------------------------------------------

    def _year_level(self, year: int) -> float:
        raw = self.digest(_TAG_YEAR_LEVEL, year, 8)
        u = (int.from_bytes(raw, "little") + 0.5) / 2**64
        z = max(-2.5, min(2.5, _NORMAL.inv_cdf(u)))
        return self._log_base + self._sig_year * z

    def _year(self, year: int) -> list[float]:
        cached = self._years.get(year)
        if cached is not None:
            return cached
        first = date(year, 1, 1).toordinal()
        days = date(year + 1, 1, 1).toordinal() - first
        trading = [date.fromordinal(first + i).weekday() < 5 for i in range(days)]
        n = sum(trading)
        words = _pairs(self._bulk(_TAG_YEAR_STEPS, year, 4 * n))
        z = _walk(words, 1 / _PAIR_SD)
        y0, y1 = self._year_level(year), self._year_level(year + 1)
        out: list[float] = []
        j = 0
        value = y0
        for is_trading in trading:
            if is_trading:
                j += 1
                value = y0 + (y1 - y0) * j / n + self._sig_day * (z[j] - j / n * z[n])
            out.append(value)  # weekends repeat Friday; nothing reads them
        return _bounded_put(self._years, year, out, _YEARS_KEPT)

    def anchor(self, day: date) -> float:
        """Log close of trade date ``day``."""
        return self._year(day.year)[day.toordinal() - date(day.year, 1, 1).toordinal()]

    # --- intraday path --------------------------------------------------------------------

    def segment(self, k: int) -> Segment:
        """The (cached) anchor-to-anchor segment holding second ``k``."""
        t0, t1, d0, d1 = segment_for(self.kind, k)
        seg = self._segments.get(t0)
        if seg is not None:
            return seg
        n_min = (t1 - t0) // 60
        words = _pairs(self._bulk(_TAG_SEGMENT, t0, 4 * n_min))
        scale = math.sqrt(60) / _PAIR_SD
        wm = _walk(words, scale)
        seg = Segment(t0, t1, self.anchor(d0), self.anchor(d1), wm)
        seg.w_end = self._bridge_walk(seg, t1 - 1)
        seg.w_slope = self.sig_sec * seg.w_end / seg.length
        return _bounded_put(self._segments, t0, seg, _SEGMENTS_KEPT)

    def _bridge_walk(self, seg: Segment, k: int) -> float:
        # The exact conditioned walk, used once per segment to pin its end.
        m, j = divmod(k - seg.t0, 60)
        base = seg.wm[m]
        if j == 0:
            return base
        dig = self.digest(_TAG_MINUTE, k // 60)
        inner = sum(dig[:j]) - j / 60 * sum(dig[:60])
        return base + j / 60 * (seg.wm[m + 1] - base) + inner / _BYTE_SD

    def _coefficients(self, seg: Segment, k: int, dig: bytes) -> tuple[float, float, int]:
        # x at second k + j of the minute starting at k is a + c * (S_j + r * j), S_j the sum
        # of the first j bytes. r is rounded to an integer so the inner walk is pure integer
        # arithmetic (C-speed accumulate); the cost is a jump of under half a one-second step
        # at the next minute mark. Quotes, bars and marks evaluate exactly this expression, so
        # they agree to the last bit, and c > 0 keeps extremes of the walk extremes of x.
        i = k - seg.t0
        m = i // 60
        sig = self.sig_sec
        drift = seg.slope - seg.w_slope
        a = seg.a0 + drift * i + sig * seg.wm[m]
        b = drift + sig * ((seg.wm[m + 1] - seg.wm[m]) - sum(dig[:60]) / _BYTE_SD) / 60
        c = sig / _BYTE_SD
        return a, c, round(b / c)

    def x_at(self, k: int) -> float:
        """Log mid price at second ``k``."""
        seg = self.segment(k)
        j = (k - seg.t0) % 60
        if j == 0:
            i = k - seg.t0
            return seg.a0 + (seg.slope - seg.w_slope) * i + self.sig_sec * seg.wm[i // 60]
        dig = self.digest(_TAG_MINUTE, k // 60)
        a, c, r = self._coefficients(seg, k - j, dig)
        return a + c * (sum(dig[:j]) + r * j)

    def x_memo(self, k: int) -> float:
        """``x_at`` memoised, for the few seconds daily bars revisit (opens and closes)."""
        found = self._x_memo.get(k)
        if found is None:
            if len(self._x_memo) >= _MARK_STATS_KEPT:
                del self._x_memo[next(iter(self._x_memo))]
            found = self._x_memo[k] = self.x_at(k)
        return found

    def minute(self, m_abs: int) -> tuple[float, float, list[int]]:
        """The 60 seconds of absolute minute ``m_abs`` as ``(a, c, ys)``.

        The log mid price at second ``j`` is ``a + c * ys[j]`` with ``c > 0`` and integer
        ``ys``, so extremes can be taken on ``ys`` and converted once.
        """
        k = m_abs * 60
        dig = self.digest(_TAG_MINUTE, m_abs)
        a, c, r = self._coefficients(self.segment(k), k, dig)
        return a, c, list(accumulate(map(add, dig[:59], repeat(r)), initial=0))

    def marks(self, k0: int, k1: int) -> list[float]:
        """Log mid prices at every minute mark ``k0 <= 60 * q < k1`` (``k0`` minute-aligned)."""
        out: list[float] = []
        k = k0
        sig = self.sig_sec
        while k < k1:
            seg = self.segment(k)
            stop = min(k1, seg.t1)
            drift = seg.slope - seg.w_slope
            wm = seg.wm
            a0 = seg.a0
            m0 = (k - seg.t0) // 60
            m1 = -(-(stop - seg.t0) // 60)
            out.extend([a0 + drift * (60 * m) + sig * wm[m] for m in range(m0, m1)])
            k = seg.t0 + 60 * m1
        return out

    def mark_stats(self, k0: int, k1: int) -> tuple[float, float, float, int]:
        """Max, min, sum and count of the marks in ``[k0, k1)`` (memoised: daily bars)."""
        key = (k0, k1)
        found = self._mark_stats.get(key)
        if found is None:
            marks = self.marks(k0, k1)
            if marks:
                found = (max(marks), min(marks), math.fsum(marks), len(marks))
            else:
                found = (-math.inf, math.inf, 0.0, 0)
            if len(self._mark_stats) >= _MARK_STATS_KEPT:
                del self._mark_stats[next(iter(self._mark_stats))]
            self._mark_stats[key] = found
        return found

    def spread(self, k: int) -> int:
        """Quoted spread in ticks (1-3), constant within each minute."""
        b = self.digest(_TAG_SPREAD, k // 3600)[(k // 60) % 60]
        return 1 if b < 140 else 2 if b < 220 else 3

    # --- session statistics ---------------------------------------------------------------

    def session_marks(self, sess: Session, next_start: int, k: int) -> SessionMarks:
        """Marks of ``sess`` from its start through second ``k`` (``k < next_start``)."""
        stats = self._sessions.get(sess.start)
        if stats is None:
            fresh_stats = SessionMarks(sess.start, next_start)
            stats = _bounded_put(self._sessions, sess.start, fresh_stats, _SESSIONS_KEPT)
        need = (k - sess.start) // 60 + 1
        have = len(stats.marks)
        if need > have:
            # Grow to the next hour so a live quote stream extends the arrays rarely.
            stop = min(stats.limit, sess.start + 60 * (-(-need // 60) * 60))
            fresh = self.marks(sess.start + 60 * have, stop)
            hi = stats.pmax[-1] if have else -math.inf
            lo = stats.pmin[-1] if have else math.inf
            for x in fresh:
                hi = x if x > hi else hi
                lo = x if x < lo else lo
                stats.pmax.append(hi)
                stats.pmin.append(lo)
            stats.marks.extend(fresh)
        return stats

    # --- volume ---------------------------------------------------------------------------

    def day_volume(self, day: date) -> float:
        """Total volume of trade date ``day`` (0.6x to 1.6x the average)."""
        raw = self.digest(_TAG_VOLUME, day.toordinal(), 2)
        return self.adv * (0.6 + int.from_bytes(raw, "little") / 65535)

    def sizes(self, k: int) -> bytes:
        """Eight random bytes for the sizes quoted at second ``k``."""
        return self.digest(_TAG_SIZES, k, 8)


def volume_fraction(sess: Session, k: int) -> float:
    """Share of the day's stock volume traded before second ``k``: 4% pre-market, 90% in
    regular hours along a U-shaped curve, 6% after hours."""
    if k <= sess.start:
        return 0.0
    if k >= sess.end:
        return 1.0
    if k < sess.rth_start:
        return 0.04 * (k - sess.start) / (sess.rth_start - sess.start)
    if k < sess.rth_end:
        x = (k - sess.rth_start) / (sess.rth_end - sess.rth_start)
        u = x + 1.5 * (((2 * x - 1) ** 3 + 1) / 6 - x / 3)
        return 0.04 + 0.90 * u
    return 0.94 + 0.06 * (k - sess.rth_end) / (sess.end - sess.rth_end)


def is_fx(kind: str) -> bool:
    """Whether a sec type is forex (no trades, no volume)."""
    return kind == FX
