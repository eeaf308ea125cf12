"""Which tasks an evaluation runs on: a family's held-out sets, fresh training draws, or a
user's own list (in Python, or a JSON file of task dicts), every task validated."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from metarl import seeds
from metarl.family import TaskFamily
from metarl.task import Task

#: The named task sets: the fixed held-out set, the out-of-distribution held-out set, and
#: fresh draws from the training distribution (seeded by the evaluation's seed).
TASK_SETS = ("test", "ood", "train")


def resolve_tasks(
    family: TaskFamily,
    tasks: str | Path | Sequence[Task | Mapping[str, Any]],
    num_tasks: int = 40,
    seed: int = 0,
) -> tuple[list[Task], str]:
    """``(tasks, name)`` for ``tasks``: ``"test"``, ``"ood"``, ``"train"`` (``num_tasks`` of
    them), the path of a JSON file holding a list of task dicts, or a list of tasks or task
    dicts. ``name`` says where they came from, for the report."""
    if isinstance(tasks, str) and tasks in TASK_SETS:
        if tasks == "test":
            return family.test_tasks(num_tasks), "test"
        if tasks == "ood":
            return family.ood_tasks(num_tasks), "ood"
        return family.sample_tasks(
            num_tasks, np.random.default_rng(seeds.train_tasks(seed))
        ), "train"
    if isinstance(tasks, (str, Path)):
        return load_task_file(family, tasks), str(tasks)
    if not isinstance(tasks, Sequence) or not tasks:
        raise ValueError(
            f"tasks must be one of {TASK_SETS}, a JSON file of task dicts, or a non-empty "
            f"list of tasks; got {tasks!r}"
        )
    return [_one_task(family, t, f"task {i}") for i, t in enumerate(tasks)], "given"


def load_task_file(family: TaskFamily, path: str | Path) -> list[Task]:
    """The tasks of a JSON file holding a list of task dicts (``task.to_dict()``), each
    validated against ``family``; an invalid one raises ``ValueError`` naming the file, the
    task's index and what is wrong."""
    path = Path(path)
    if path.suffix.lower() != ".json":
        raise ValueError(
            f"tasks must be one of {TASK_SETS} or a .json file of task dicts, got {str(path)!r}"
        )
    if not path.is_file():
        raise FileNotFoundError(f"task file {str(path)!r} does not exist")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from None
    if not isinstance(data, list) or not data:
        raise ValueError(
            f"{path} must hold a non-empty JSON list of task dicts, e.g. "
            f"[{json.dumps(family.default_task().to_dict())}]"
        )
    return [_one_task(family, entry, f"{path}: task {i}") for i, entry in enumerate(data)]


def _one_task(family: TaskFamily, value: Any, where: str) -> Task:
    try:
        if isinstance(value, Task):
            if value.family != family.id:
                raise ValueError(f"it belongs to {value.family}, not {family.id}")
            return family.task_from_dict(dict(value))
        return family.task_from_dict(value)
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None
