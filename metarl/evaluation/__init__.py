"""Held-out evaluation: adaptation curves (the return after 0, 1, ..., K adaptation steps of a
few episodes each) on tasks the learner never trained on, as reports that save to JSON/CSV
and plot beside the baselines'."""

from metarl.evaluation.evaluate import evaluate, run_evaluation
from metarl.evaluation.report import AdaptationReport
from metarl.evaluation.tasks import TASK_SETS, load_task_file, resolve_tasks

__all__ = [
    "TASK_SETS",
    "AdaptationReport",
    "evaluate",
    "load_task_file",
    "resolve_tasks",
    "run_evaluation",
]
