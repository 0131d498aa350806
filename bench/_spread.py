"""How every benchmark prints a measure taken over rounds or seeds: its median and its range."""

from __future__ import annotations

import statistics
from collections.abc import Iterable


def spread(values: Iterable[float], digits: int = 3) -> str:
    """median [min, max]"""
    ordered = sorted(values)
    return f"{statistics.median(ordered):.{digits}f} [{ordered[0]:.{digits}f}, {ordered[-1]:.{digits}f}]"
