"""Print every figure recorded by the benches (``BENCH_RESULTS``) as one table."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def main() -> int:
    """Print the table; exit 0 (targets are reported, not enforced: this is not a test)."""
    path = Path(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("BENCH_RESULTS", ""))
    if not path.is_file():
        print("no bench results recorded")
        return 0
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    head = f"{'figure':52} {'value':>12} {'baseline':>12} {'ratio':>8} {'target':>9}  met"
    print("\n== summary (ratios against baselines measured in the same run)")
    print(head)
    print("-" * len(head))
    met_count = 0
    targeted = 0
    for row in rows:
        unit = row["unit"]
        target = row["target"]
        if target is None:
            target_text, met_text = "-", "-"
        else:
            targeted += 1
            sign = ">=" if row["higher_is_better"] else "<="
            target_text = f"{sign}{target:g}x"
            met_text = "yes" if row["met"] else "NO"
            met_count += bool(row["met"])
        print(
            f"{row['figure'][:52]:52} {row['value']:>9.3f} {unit:2} {row['baseline']:>9.3f} "
            f"{unit:2} {row['ratio']:>7.2f}x {target_text:>9}  {met_text}"
        )
        if row.get("baseline_name"):
            print(f"{'':52}   baseline: {row['baseline_name']}")
    print(f"targets met: {met_count}/{targeted}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
