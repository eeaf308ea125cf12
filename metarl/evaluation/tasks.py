"""Which tasks an evaluation runs on: a family's held-out sets, fresh training draws, or a
user's own list (in Python, or a JSON file of task dicts), every task validated.

A task in a list or file names every parameter of its family (as ``task.to_dict()`` writes
it): an evaluation's tasks are explicit, and a typo'd or empty dict never silently becomes
the default task. An evaluation runs all its tasks in one batch, so it takes at most
:data:`MAX_TASKS` of them (evaluate more in several runs), and a task file is at most
:data:`MAX_TASK_FILE_BYTES`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from metarl import seeds
from metarl.excerpt import shown
from metarl.family import TaskFamily
from metarl.task import Task

#: The named task sets: the fixed held-out set, the out-of-distribution held-out set, and
#: fresh draws from the training distribution (seeded by the evaluation's seed).
TASK_SETS = ("test", "ood", "train")
#: The most tasks one evaluation takes (its batch holds every episode of every task).
MAX_TASKS = 1000
#: The largest task file read (1000 tasks of a few parameters take well under 1 MiB).
MAX_TASK_FILE_BYTES = 8 * 1024 * 1024


def _check_num_tasks(n: int, what: str) -> None:
    if n > MAX_TASKS:
        raise ValueError(
            f"{what}: {n:,} tasks is more than one evaluation takes (at most {MAX_TASKS:,}; "
            f"its batch holds every episode of every task): evaluate them in several runs"
        )


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
        if not isinstance(num_tasks, bool) and isinstance(num_tasks, int):
            _check_num_tasks(num_tasks, f"num_tasks of the {tasks!r} set")
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
            f"list of tasks; got {shown(tasks)}"
        )
    _check_num_tasks(len(tasks), "the tasks given")
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
    if path.stat().st_size > MAX_TASK_FILE_BYTES:
        raise ValueError(
            f"{path}: {path.stat().st_size:,} bytes is too large for a task file (at most "
            f"{MAX_TASK_FILE_BYTES:,}; at most {MAX_TASKS:,} tasks per evaluation)"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from None
    except RecursionError:
        raise ValueError(f"{path}: nested too deeply to be a list of task dicts") from None
    if not isinstance(data, list) or not data:
        raise ValueError(
            f"{path} must hold a non-empty JSON list of task dicts, e.g. "
            f"[{json.dumps(family.default_task().to_dict())}]"
        )
    _check_num_tasks(len(data), str(path))
    return [_one_task(family, entry, f"{path}: task {i}") for i, entry in enumerate(data)]


def _one_task(family: TaskFamily, value: Any, where: str) -> Task:
    try:
        if isinstance(value, Task):
            if value.family != family.id:
                raise ValueError(f"it belongs to {value.family}, not {family.id}")
            return family.task_from_dict(dict(value))
        if isinstance(value, Mapping):
            names = [p.name for p in family.parameters]
            missing = [name for name in names if name not in value]
            if missing and all(key in names for key in value):  # else: the unknown key's error
                default = family.default_task().to_dict()
                raise ValueError(
                    f"it gives no value for {missing} (a task names every parameter, as "
                    f"task.to_dict() writes it; the defaults: "
                    f"{shown({k: default[k] for k in missing})})"
                )
        return family.task_from_dict(value)
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None
