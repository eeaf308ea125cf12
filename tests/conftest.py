"""Shared fixtures: the bundled family ids and a few tasks of each."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")  # offscreen rendering (videos), before mujoco loads

import numpy as np
import pytest

import metarl

BUNDLED_IDS = sorted(__import__("metarl_envs").BUNDLED_FAMILIES)


@pytest.fixture(scope="session")
def families() -> dict[str, metarl.TaskFamily]:
    return {fid: metarl.make_family(fid) for fid in BUNDLED_IDS}


def some_tasks(family: metarl.TaskFamily, n: int = 3) -> list[metarl.Task]:
    """The default task, then distinct training draws (for discrete families, every value)."""
    tasks = [family.default_task()]
    rng = np.random.default_rng(123)
    while len(tasks) < n:
        task = family.sample_task(rng)
        if task not in tasks:
            tasks.append(task)
        if len(tasks) >= n or _exhausted(family, tasks):
            break
    return tasks


def _exhausted(family: metarl.TaskFamily, tasks: list[metarl.Task]) -> bool:
    choices = [p.distribution for p in family.parameters if p.is_choice]
    if len(choices) != len(family.parameters):
        return False
    return len(tasks) >= int(np.prod([len(c.values) for c in choices]))
