"""The task-family abstraction: a distribution over tasks and a way to build each task's env.

A family defined in a few lines::

    class LineFamily(metarl.TaskFamily):
        \"\"\"Walk to a goal on a line.\"\"\"
        horizon = 20
        parameters = (metarl.Parameter("goal", "goal position", metarl.Uniform(-1, 1), 0.0),)
        env_class = LineEnv          # LineEnv(goal=..., **env_kwargs) is a gymnasium.Env

    metarl.register_family("Line-v0", LineFamily)

Everything else (sampling, fixed held-out sets, validation, JSON round trips, the safety
wrapper, the horizon) comes from this base class. Override :meth:`create_env` instead of
setting ``env_class`` when building the env needs more than the task's keywords, and
:meth:`sample_task` when parameters must be drawn jointly.

Optionally, the env class may define ``set_task(**params)``, switching a built env to another
task of the family in place (same keywords as the constructor). The sampler then reuses envs
across tasks instead of building new ones (a MuJoCo env takes milliseconds to build, and a
meta-training iteration needs hundreds). After ``set_task(**task)`` the env must behave exactly
as ``create_env(task)`` would.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import TimeLimit

from metarl import seeds
from metarl.env_guard import TaskGuard, guard_of
from metarl.task import Parameter, Task

#: Names a parameter may not take: ``task.<name>`` would give the Task's own attribute.
_TASK_ATTRIBUTES = frozenset(name for name in dir(Task) if not name.startswith("_"))

#: Number of held-out test tasks the MAML protocol evaluates on.
DEFAULT_TEST_TASKS = 40


def _check_count(n: Any, what: str, minimum: int = 0) -> int:
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"{what} must be an int, got {type(n).__name__}")
    if n < minimum:
        raise ValueError(f"{what} must be >= {minimum}, got {n}")
    return int(n)


class TaskFamily:
    """A distribution over tasks, with fixed held-out sets and an env for each task.

    Subclasses set:
        horizon: episode length (steps) of every env of the family.
        parameters: the :class:`~metarl.Parameter` records describing a task (a class
            attribute, or set per instance in ``__init__`` when it depends on a model).
        env_class: a ``gymnasium.Env`` class whose constructor takes the task's parameters as
            keyword arguments (or override :meth:`create_env`).

    The registry sets :attr:`id` when it builds a family; the held-out sets are seeded from it.

    Args:
        horizon: override the class's episode length.
    """

    horizon: ClassVar[int] = 0
    parameters: Sequence[Parameter] = ()
    env_class: ClassVar[type[gym.Env] | None] = None

    def __init__(self, *, horizon: int | None = None) -> None:
        if horizon is not None:
            self.horizon = _check_count(horizon, "horizon", minimum=1)  # type: ignore[misc]
        if not (isinstance(self.horizon, int) and self.horizon >= 1):
            raise TypeError(f"{type(self).__name__} must set a class attribute horizon >= 1")
        self.parameters = tuple(self.parameters)
        if not self.parameters:
            raise TypeError(f"{type(self).__name__} must define at least one Parameter")
        names = [p.name for p in self.parameters]
        if len(set(names)) != len(names):
            raise TypeError(f"{type(self).__name__} has duplicate parameter names: {names}")
        clashes = sorted(set(names) & _TASK_ATTRIBUTES)
        if clashes:
            raise TypeError(
                f"{type(self).__name__}: parameter name(s) {clashes} would hide Task attributes "
                f"of the same name; choose other names"
            )
        self._params = {p.name: p for p in self.parameters}
        if not hasattr(self, "id"):
            self.id = type(self).__name__

    # ------------------------------------------------------------------ description
    @property
    def description(self) -> str:
        """First paragraph of the family's docstring."""
        doc = inspect.getdoc(type(self)) or ""
        return " ".join(doc.split("\n\n")[0].split())

    @property
    def has_ood(self) -> bool:
        """Whether the family defines an out-of-distribution range for held-out evaluation."""
        return any(p.ood is not None for p in self.parameters)

    def describe(self) -> str:
        """One line: horizon and each parameter with its range (``metarl families``)."""
        return f"horizon {self.horizon:<4d} " + "; ".join(p.summary() for p in self.parameters)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id!r} horizon={self.horizon}>"

    # ------------------------------------------------------------------ tasks
    def make_task(self, **params: Any) -> Task:
        """Build a validated task; parameters not given take their defaults.

        Raises:
            ValueError: an unknown parameter name, or a value outside the allowed range.
        """
        unknown = sorted(set(params) - set(self._params))
        if unknown:
            raise ValueError(
                f"{self.id} has no parameter(s) {unknown}; its parameters are {list(self._params)}"
            )
        values = {}
        for name, p in self._params.items():
            try:
                values[name] = p.validate(params[name]) if name in params else p.default
            except ValueError as err:
                raise ValueError(f"{self.id}: {err}") from None
        return Task(self.id, values)

    def task_from_dict(self, data: Mapping[str, Any]) -> Task:
        """Rebuild a task from ``task.to_dict()`` (or a hand-written dict), validating it."""
        if not isinstance(data, Mapping):
            raise ValueError(
                f"{self.id}: a task must be a dict of parameters, got {type(data).__name__}"
            )
        return self.make_task(**{str(k): v for k, v in data.items()})

    def default_task(self) -> Task:
        """The task made of every parameter's default."""
        return self.make_task()

    def sample_task(self, rng: np.random.Generator, ood: bool = False) -> Task:
        """Draw one task. Override when parameters must be drawn jointly."""
        return Task(self.id, {p.name: p.sample(rng, ood=ood) for p in self.parameters})

    def sample_tasks(self, n: int, rng: np.random.Generator) -> list[Task]:
        """Draw ``n`` tasks from the training distribution using ``rng``.

        The same generator state gives the same tasks, and the first ``k`` tasks of a draw of
        ``n`` equal a draw of ``k`` from the same state.
        """
        n = _check_count(n, "n")
        if not isinstance(rng, np.random.Generator):
            raise TypeError(
                f"rng must be a numpy.random.Generator (e.g. numpy.random.default_rng(0)), "
                f"got {type(rng).__name__}"
            )
        return [self.sample_task(rng) for _ in range(n)]

    def test_tasks(self, n: int = DEFAULT_TEST_TASKS) -> list[Task]:
        """A fixed held-out set from the training distribution, the same on every machine.

        Drawn from the family's own seed stream (derived from its id), so it never depends on
        the training seed; ``test_tasks(k)`` is a prefix of ``test_tasks(n)`` for ``k <= n``.
        """
        n = _check_count(n, "n")
        rng = np.random.default_rng(seeds.named(f"metarl/test/{self.id}"))
        return [self.sample_task(rng) for _ in range(n)]

    def ood_tasks(self, n: int = DEFAULT_TEST_TASKS) -> list[Task]:
        """A fixed held-out set from the out-of-distribution range (same guarantees as
        :meth:`test_tasks`). Raises ``ValueError`` if the family defines no OOD range."""
        n = _check_count(n, "n")
        if not self.has_ood:
            raise ValueError(
                f"{self.id} defines no out-of-distribution range; use test_tasks() instead"
            )
        rng = np.random.default_rng(seeds.named(f"metarl/ood/{self.id}"))
        return [self.sample_task(rng, ood=True) for _ in range(n)]

    def task_features(self, task: Task) -> np.ndarray:
        """A flat float32 encoding of ``task``, for a policy that observes its task (the
        oracle baseline): numeric parameters flattened in order, a ``Choice`` one-hot over its
        training and out-of-distribution values. Override for a better-scaled encoding."""
        task = self._check_own(task)
        parts = []
        for p in self.parameters:
            if p.is_choice:
                ood = p.ood.values if p.ood is not None else ()
                values = list(dict.fromkeys((*p.distribution.values, *ood)))
                parts.append(np.eye(len(values))[values.index(task[p.name])])
            else:
                parts.append(np.asarray(task[p.name], dtype=float).ravel())
        return np.concatenate(parts).astype(np.float32)

    def _check_own(self, task: Any) -> Task:
        if not isinstance(task, Task):
            raise TypeError(
                f"expected a metarl Task of {self.id}, got {type(task).__name__}; build one "
                f"with family.make_task(...) or family.task_from_dict(...)"
            )
        if task.family != self.id:
            raise ValueError(f"task {task!r} belongs to family {task.family}, not {self.id}")
        return self.task_from_dict(dict(task))

    # ------------------------------------------------------------------ envs
    def create_env(self, task: Task, **env_kwargs: Any) -> gym.Env:
        """Build the raw env of ``task`` (no time limit, no guard). Override if needed."""
        if self.env_class is None:
            raise TypeError(f"{type(self).__name__} must set env_class or override create_env")
        return self.env_class(**task.to_dict(), **env_kwargs)

    def retask_env(self, env: gym.Env, task: Task) -> bool:
        """Switch ``env`` (built by :meth:`make_env`) to ``task`` in place, if its env class
        defines ``set_task``; returns False, leaving ``env`` untouched, if it does not."""
        task = self._check_own(task)
        set_task = getattr(env.unwrapped, "set_task", None)
        guard = guard_of(env)
        if set_task is None:
            return False
        set_task(**task.to_dict())
        guard.task = task
        return True

    def make_env(self, task: Task, **env_kwargs: Any) -> gym.Env:
        """The env of ``task``, ready to use: episodes end at :attr:`horizon`, actions are
        checked and clipped, unstable physics ends the episode, ``info`` carries the task.

        ``env_kwargs`` go to the env constructor (e.g. ``render_mode="rgb_array"``).
        """
        task = self._check_own(task)
        try:
            env = self.create_env(task, **env_kwargs)
        except TypeError as err:
            raise TypeError(
                f"{self.id}: could not build the env of {task!r} with env_kwargs "
                f"{env_kwargs}: {err}"
            ) from err
        return TimeLimit(TaskGuard(env, task), max_episode_steps=self.horizon)
