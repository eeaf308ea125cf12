"""A training run's log: one CSV row and one TensorBoard scalar per statistic per iteration."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any


class RunLog:
    """Appends each iteration's statistics to ``progress.csv`` and to TensorBoard (``tb/``)
    in ``run_dir``. Columns are fixed by the first row written; a resumed run appends."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / "progress.csv"
        self._columns: list[str] | None = None
        if self.path.exists():
            with open(self.path, newline="") as handle:
                self._columns = next(csv.reader(handle), None)
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # pragma: no cover - tensorboard is a dependency
            self._tb = None
        else:
            self._tb = SummaryWriter(str(run_dir / "tb"))

    def write(self, iteration: int, stats: dict[str, Any]) -> None:
        row = {"iteration": iteration, **stats}
        if self._columns is None:
            self._columns = list(row)
            with open(self.path, "w", newline="") as handle:
                csv.writer(handle).writerow(self._columns)
        with open(self.path, "a", newline="") as handle:
            csv.writer(handle).writerow([row.get(c, "") for c in self._columns])
        if self._tb is not None:
            for key, value in stats.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    self._tb.add_scalar(key, value, iteration)
            self._tb.flush()

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None
