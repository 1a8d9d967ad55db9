"""Bench results: each script records figures here; ``report.py`` prints them as one table."""

from __future__ import annotations

import json
import os
from pathlib import Path


def record(
    figure: str,
    value: float,
    baseline: float,
    *,
    unit: str = "ms",
    target: float | None = None,
    higher_is_better: bool = False,
    baseline_name: str = "",
) -> float:
    """Append one figure (value vs a baseline measured in the same run) and return the ratio.

    Args:
        figure: What was measured.
        value: The measured value (in ``unit``).
        baseline: The in-run baseline it is compared with (same unit).
        unit: Unit of value and baseline.
        target: The target ratio (value / baseline), if any.
        higher_is_better: True when a larger ratio is the goal (throughput, speed-ups).
        baseline_name: What the baseline is.
    """
    ratio = value / baseline if baseline else float("nan")
    met = None
    if target is not None:
        met = ratio >= target if higher_is_better else ratio <= target
    row = {
        "figure": figure,
        "value": value,
        "baseline": baseline,
        "baseline_name": baseline_name,
        "unit": unit,
        "ratio": ratio,
        "target": target,
        "higher_is_better": higher_is_better,
        "met": met,
    }
    path = os.environ.get("BENCH_RESULTS")
    if path:
        with Path(path).open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")
    return ratio
