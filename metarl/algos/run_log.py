"""A training run's log: one CSV row and one TensorBoard scalar per statistic per iteration."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from metarl.atomic import atomic_path


class RunLog:
    """Appends each iteration's statistics to ``progress.csv`` and to TensorBoard (``tb/``)
    in ``run_dir``. Columns are those of the first row written; a statistic that appears later
    (a held-out evaluation every N iterations) adds a column, earlier rows leaving it empty.

    A resumed run appends. The iterations a stopped run logged after its last checkpoint are
    run again on resume, so the first write of iteration ``i`` drops the rows of iterations
    ``>= i`` from the CSV (rewritten atomically) and TensorBoard purges its events from ``i``:
    the log holds each iteration once, as the resumed run computed it.
    """

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.path = run_dir / "progress.csv"
        self._columns: list[str] | None = None
        self._tb: Any = None
        self._started = False

    def _start(self, iteration: int) -> None:
        """Open the log for a run whose first iteration written is ``iteration``."""
        self._started = True
        if self.path.exists():
            with open(self.path, newline="") as handle:
                rows = list(csv.reader(handle))
            if rows:
                self._columns = rows[0]
                kept = [r for r in rows[1:] if r and int(r[0]) < iteration]
                if len(kept) < len(rows) - 1:
                    self._rewrite(self._columns, kept)
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # pragma: no cover - tensorboard is a dependency
            return
        self._tb = SummaryWriter(str(self.run_dir / "tb"), purge_step=iteration)

    def write(self, iteration: int, stats: dict[str, Any]) -> None:
        if not self._started:
            self._start(iteration)
        row = {"iteration": iteration, **stats}
        if self._columns is None:
            self._columns = list(row)
            with open(self.path, "w", newline="") as handle:
                csv.writer(handle).writerow(self._columns)
        new = [key for key in row if key not in self._columns]
        if new:  # a statistic not logged before (a periodic evaluation): widen the table
            self._columns = [*self._columns, *new]
            with open(self.path, newline="") as handle:
                rows = list(csv.reader(handle))[1:]
            self._rewrite(self._columns, [r + [""] * (len(self._columns) - len(r)) for r in rows])
        with open(self.path, "a", newline="") as handle:
            csv.writer(handle).writerow([row.get(c, "") for c in self._columns])
        if self._tb is not None:
            for key, value in stats.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    self._tb.add_scalar(key, value, iteration)
            self._tb.flush()

    def _rewrite(self, columns: list[str], rows: list[list[str]]) -> None:
        """Replace the CSV, atomically, with ``columns`` and ``rows``."""
        with atomic_path(self.path) as temp, open(temp, "w", newline="") as handle:
            csv.writer(handle).writerows([columns, *rows])

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None
