"""Vectorized steps of pure-array envs, and what every vectorized step shares.

An env class may name a *vector step*, a class that computes its ``step`` for many of its envs
at once, bit-identical to the env's own ``step``; the sampler then steps all its envs in its own
process (:class:`metarl.sampling.env_slots.EnvSlots` with ``vectorized=True``) instead of
calling each env's ``step``, in worker processes. There are two kinds:

- :class:`metarl.mujoco.VectorStep`, for MuJoCo envs: MuJoCo steps the physics of every env
  on native threads, and the step computes observations and rewards from the gathered state
  (:mod:`metarl.mujoco.vector_step`);
- :class:`ArrayStep`, here, for envs whose state is a few NumPy arrays (no physics engine,
  such as Navigation2D): the state of every env sits in ``[n, ...]`` arrays, and one NumPy
  call per time step advances all of them. A Python ``step`` per env costs microseconds of
  interpreter per call, which dwarfs a step of arithmetic on a 2-vector; in one call the
  interpreter's cost is paid once per time step for the whole batch.

An env class opts in with a class attribute, whichever the kind::

    class MyEnv(gym.Env):
        vector_step = MyArrayStep     # an ArrayStep (or, for MuJoCo, a VectorStep) subclass

Its tests should check it the way the bundled families' are checked: a sampler with
``vectorized=True`` gives the same batches to the bit as one with ``vectorized=False``, which
steps each env through its own ``step`` (``tests/test_vector_step.py``).

This module belongs to the env layer: a family module imports it to name its step, without
importing the sampler, and it imports only NumPy and Gymnasium.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

Arrays = Mapping[str, np.ndarray]


class BatchStep:
    """What every vectorized step shares (subclass :class:`ArrayStep` or
    :class:`metarl.mujoco.VectorStep`, not this): the envs it steps, each env's task
    parameters read into arrays, and the family settings every env must share.

    Args:
        envs: the unwrapped envs, all of the class that names this step.
    """

    #: Env attributes that differ per task (a target velocity, a goal): each is read from
    #: every env into a ``[n, ...]`` array under the same name on the step (index it with
    #: ``rows``).
    task_attributes: ClassVar[tuple[str, ...]] = ()

    def __init__(self, envs: Sequence[Any]) -> None:
        if not envs:
            raise ValueError(f"a {type(self).__name__} needs at least one env")
        self.envs = list(envs)
        for name in self.task_attributes:
            setattr(self, name, self.per_env(name))

    @classmethod
    def check_envs(cls, envs: Sequence[Any]) -> None:
        """A ``ValueError`` unless every env's class names this step: a batch is stepped by
        one step class, so it holds envs of one class."""
        for env in envs:
            if vars(type(env)).get("vector_step") is not cls:
                raise ValueError(
                    f"an env of {type(env).__name__} in a batch stepped by {cls.__name__}; a "
                    f"batch holds envs of one class, whose vector_step is its step"
                )

    def shared(self, name: str) -> Any:
        """The value of env attribute ``name``, which every env must share (a setting of the
        family, not of a task); a ``ValueError`` if the envs disagree."""
        first = getattr(self.envs[0], name)
        for env in self.envs[1:]:
            if not np.array_equal(np.asarray(getattr(env, name)), np.asarray(first)):
                raise ValueError(
                    f"{type(self).__name__}: the envs disagree on {name!r}, which must be the "
                    f"same for every env of a batch"
                )
        return first

    def per_env(self, name: str) -> np.ndarray:
        """Env attribute ``name`` (a task parameter) of every env, stacked: ``[n, ...]``."""
        return np.stack([np.asarray(getattr(env, name), dtype=np.float64) for env in self.envs])

    def set_env(self, k: int, env: Any) -> None:
        """Row ``k`` now runs ``env`` (the same env retasked in place, or a new env of the
        class): its task attributes are read again."""
        self.check_envs([env])
        for name in self.task_attributes:
            getattr(self, name)[k] = np.asarray(getattr(env, name), dtype=np.float64)
        self.envs[k] = env


def vector_step_of(env: gym.Env) -> type[BatchStep] | None:
    """The vector step (an :class:`ArrayStep` or :class:`metarl.mujoco.VectorStep` subclass)
    the env's class names, or None.

    Only a ``vector_step`` set on the env's own class counts: a subclass may step differently
    (another reward, say), so it does not inherit its parent's; it names one again if its step
    is the same.
    """
    step = vars(type(env.unwrapped)).get("vector_step")
    if step is not None and not (isinstance(step, type) and issubclass(step, BatchStep)):
        raise TypeError(
            f"{type(env.unwrapped).__name__}.vector_step must be a VectorStep subclass "
            f"(metarl.mujoco) or an ArrayStep subclass (metarl.array_step), got {step!r}"
        )
    return step


class ArrayStep(BatchStep, abc.ABC):
    """The ``step`` of one pure-array env class, for many of its envs at once.

    The env keeps its state in attributes (:attr:`state`, e.g. a position). The sampler
    resets each env with its own ``reset`` (its seed, its ``np_random``), copies the state
    attributes into the env's row of ``[n, ...]`` arrays (:meth:`ArrayStepper.capture`), and
    from then on advances every row by one :meth:`step` call per time step. The envs'
    own attributes are not advanced, so one env can serve several rows (reset it, capture it
    into row k, reset it again for row k + 1): the sampler keeps one env per task.

    :meth:`step` must compute what the env's ``step`` computes, to the bit, from the state
    and the actions alone: the same operations on the same dtypes (the simplest way: let the
    env's ``step`` and :meth:`step` call one function written for ``[..., d]`` arrays, as
    Navigation2D does), no draw from ``np_random`` after the reset (what the reset draws is
    in the captured state), and a reward that is the sum of the reward terms the env
    reports (the guard checks those terms in the env's own ``step``). The sampler applies
    the guard's action clipping before, and its rule for unstable steps (a non-finite
    observation or reward, :mod:`metarl.instability`) and the family's time limit after.
    """

    #: The env attributes that hold an episode's state, read from each env after its reset
    #: (they must exist from the env's construction) and given to :meth:`step` as
    #: ``[m, ...]`` arrays under the same names.
    state: ClassVar[tuple[str, ...]] = ()

    @abc.abstractmethod
    def step(
        self, rows: np.ndarray, state: Arrays, actions: np.ndarray
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
        """``(state, observations [m, obs_dim], rewards [m], terminated [m])`` of envs
        ``rows`` after one step: the new value of every :attr:`state` array, and what
        ``step`` returns.

        Args:
            rows: indices (into ``envs``) of the m envs to step.
            state: the :attr:`state` of those envs before the step, ``[m, ...]`` each (the
                step may not write to them).
            actions: their actions (clipped to the action space, in its dtype), ``[m, d]``.
        """


class ArrayStepper:
    """Steps a list of envs of one :class:`ArrayStep` class, all of them in one call.

    The same interface as :class:`metarl.mujoco.VectorStepper` (which
    :class:`~metarl.sampling.env_slots.EnvSlots` uses the same way): :meth:`capture` a row's
    state after its env's reset, :meth:`step` the rows of running episodes, :meth:`replace`
    the envs of rows whose task changed.

    Args:
        envs: the unwrapped env of each row; an env may appear in several rows.
        step: their ArrayStep class.
    """

    def __init__(self, envs: Sequence[Any], step: type[ArrayStep]) -> None:
        step.check_envs(envs)
        self.step_fn = step(envs)
        self._state: dict[str, np.ndarray] = {}  # every row's state, [n, ...] each
        for name in step.state:
            try:
                value = np.asarray(getattr(envs[0], name))
            except AttributeError:
                raise ValueError(
                    f"{step.__name__}.state names {name!r}, which {type(envs[0]).__name__} "
                    f"does not have; set it in the env's __init__ (as reset does)"
                ) from None
            self._state[name] = np.zeros((len(envs), *value.shape), dtype=value.dtype)

    def replace(self, rows: Sequence[int], envs: Sequence[Any]) -> None:
        """Rows ``rows`` now run ``envs`` (unwrapped; retasked in place, or new envs of the
        class): their task attributes. Call :meth:`capture` after resetting them."""
        for k, env in zip(rows, envs, strict=True):
            self.step_fn.set_env(k, env)

    def capture(self, k: int) -> None:
        """Take row ``k``'s state from its env (right after the env's reset)."""
        env = self.step_fn.envs[k]
        for name, value in self._state.items():
            value[k] = getattr(env, name)

    def step(self, rows: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, ...]:
        """Step envs ``rows`` with ``actions`` (one row each).

        Returns ``(obs, rewards, terminated, physics_unstable)`` for those rows, as
        :meth:`metarl.mujoco.VectorStepper.step` does; ``physics_unstable`` is all False: a
        pure-array env has no physics engine to report on, so what is unstable is what the
        guard's rule finds in the observations and rewards, as for the env's own ``step``.
        """
        before = {name: value[rows] for name, value in self._state.items()}
        after, obs, rewards, terminated = self.step_fn.step(rows, before, actions)
        for name, value in self._state.items():
            if name not in after:
                raise ValueError(
                    f"{type(self.step_fn).__name__}.step returned no {name!r}; it returns "
                    f"the new value of every array of its state {tuple(self._state)}"
                )
            value[rows] = after[name]
        return obs, rewards, terminated, np.zeros(len(rows), dtype=bool)
