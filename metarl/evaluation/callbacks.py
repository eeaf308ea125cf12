"""Callbacks that evaluate during training (they sit with evaluation, so that nothing in
:mod:`metarl.algos` imports it): :class:`EvaluationCallback`, the held-out adaptation curve
every few iterations, logged with the training statistics, saved, and the best iteration kept.

The hooks themselves (:class:`~metarl.algos.callbacks.Callback`) are training's; the names of
the files it writes (reports, the best checkpoint) are :mod:`metarl.runs`'s.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from metarl import runs
from metarl.algos.callbacks import Callback
from metarl.atomic import atomic_path
from metarl.evaluation.evaluate import run_evaluation
from metarl.evaluation.report import AdaptationReport
from metarl.evaluation.tasks import resolve_tasks

if TYPE_CHECKING:
    from metarl.algos.base import MetaLearner


class EvaluationCallback(Callback):
    """Every ``every`` iterations, the held-out adaptation curve (:func:`metarl.evaluate`).

    Its means go into the iteration's statistics as ``heldout/return_step_<k>`` and
    ``heldout/gain`` (step ``steps`` minus step 0), with ``heldout/seconds``, so they are
    logged to ``progress.csv`` and TensorBoard beside the training returns. With a run
    directory, each report is saved as ``evaluation/<tasks>-iter<N>-seed<S>.json`` (the name
    ``metarl evaluate`` gives it), and the iteration with the best return after the last step
    so far is kept as ``checkpoints/best.safetensors`` with ``checkpoints/best.json`` (its
    iteration, score and report), which a resumed run reads back so "best" spans the run.

    Evaluation samples with its own seed: training is bit-identical with or without it.

    Args:
        every: evaluate after every this many iterations (counted over the whole run).
        tasks: ``"test"``, ``"ood"``, ``"train"``, a JSON task file, or a list of tasks.
        steps: adaptation steps per evaluation.
        episodes: episodes per task and step.
        num_tasks: tasks of a named set.
        seed: the evaluation's seed (the same tasks and episodes each time, so evaluations
            are comparable across iterations).
        save_best: keep the best iteration's checkpoint (needs a run directory).
        verbose: print one line per evaluation.
    """

    def __init__(
        self,
        every: int,
        tasks: Any = "test",
        steps: int = 3,
        episodes: int = 20,
        num_tasks: int = 40,
        seed: int = 0,
        save_best: bool = True,
        verbose: bool = False,
    ) -> None:
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"every must be an int >= 1 (iterations), got {every!r}")
        for name, value, low in (("steps", steps, 0), ("episodes", episodes, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
        self.every = every
        self.tasks = tasks
        self.steps = steps
        self.episodes = episodes
        self.num_tasks = num_tasks
        self.seed = seed
        self.save_best = save_best
        self.verbose = verbose
        #: The reports of this training call, in order.
        self.reports: list[AdaptationReport] = []
        #: The best score (mean return after the last step) so far, and its iteration.
        self.best_score = -math.inf
        self.best_iteration: int | None = None

    def _best_record(self, learner: MetaLearner) -> Path | None:
        if learner.run_dir is None or not self.save_best:
            return None
        return runs.best_record_path(learner.run_dir)

    def on_training_start(self, learner: MetaLearner) -> None:
        resolve_tasks(learner.family, self.tasks, self.num_tasks, self.seed)  # fail now, not later
        record = self._best_record(learner)
        if record is not None and record.exists():
            saved = json.loads(record.read_text())
            if saved.get("iteration", math.inf) <= learner.iteration:
                self.best_score = float(saved["score"])
                self.best_iteration = int(saved["iteration"])

    def on_iteration_end(self, learner: MetaLearner, stats: dict[str, Any]) -> bool:
        if learner.iteration % self.every:
            return True
        start = time.perf_counter()
        report, _, _ = run_evaluation(
            learner, self.tasks, self.steps, self.episodes, self.seed, self.num_tasks
        )
        seconds = time.perf_counter() - start
        self.reports.append(report)
        means = report.mean_return
        for k, value in zip(report.steps, means, strict=True):
            stats[f"heldout/return_step_{k}"] = value
        stats["heldout/gain"] = means[-1] - means[0]
        stats["heldout/seconds"] = seconds
        saved = None
        if learner.run_dir is not None:
            saved = report.save(runs.report_path(learner, self.tasks, self.seed))
        score = means[-1]
        improved = not math.isnan(score) and score > self.best_score
        if improved:
            self.best_score, self.best_iteration = score, learner.iteration
            record = self._best_record(learner)
            if record is not None:
                runs.write_checkpoint(learner, runs.best_checkpoint_path(learner.run_dir))
                document = {
                    "iteration": learner.iteration,
                    "score": score,
                    "metric": f"mean held-out return after {self.steps} adaptation steps",
                    "report": None if saved is None else str(saved.relative_to(learner.run_dir)),
                }
                with atomic_path(record) as temp:
                    temp.write_text(json.dumps(document, indent=2) + "\n")
        if self.verbose:
            curve = ", ".join(f"{m:.1f}" for m in means)
            mark = " (best so far)" if improved else ""
            tqdm.write(
                f"iteration {learner.iteration}: held-out return after 0..{self.steps} "
                f"adaptation steps: {curve}{mark}"
            )
        return True
