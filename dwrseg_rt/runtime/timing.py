"""Per-stage wall-clock timing for the pipeline's final table and JSON."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from contextlib import contextmanager

import numpy as np


class StageTimer:
    """Collects durations per stage name; safe to use from several threads."""

    def __init__(self) -> None:
        self._samples: dict[str, list[float]] = defaultdict(list)
        self._lock = threading.Lock()

    @contextmanager
    def stage(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - start)

    def reset(self) -> None:
        with self._lock:
            self._samples.clear()

    def add(self, name: str, seconds: float) -> None:
        with self._lock:
            self._samples[name].append(seconds)

    def summary(self) -> dict[str, dict[str, float]]:
        """Per stage: count, mean/median/p90/p99 ms, total seconds."""
        with self._lock:
            items = {k: np.asarray(v) for k, v in self._samples.items()}
        return {
            name: {
                "count": int(v.size),
                "mean_ms": float(v.mean() * 1e3),
                "median_ms": float(np.median(v) * 1e3),
                "p90_ms": float(np.percentile(v, 90) * 1e3),
                "p99_ms": float(np.percentile(v, 99) * 1e3),
                "total_s": float(v.sum()),
            }
            for name, v in items.items()
            if v.size
        }
