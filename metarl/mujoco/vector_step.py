"""Vectorised steps: a batch of one family's MuJoCo envs stepped together on native threads,
with their observations and rewards computed for the whole batch in NumPy.

Stepping a Gymnasium MuJoCo env costs its physics (``mj_step``) plus the Python around it
(the observation, the reward, the checks): for HalfCheetah about 13 µs on top of 46 µs of
physics, all of it holding the GIL, so threads cannot share the work and processes must
(see :mod:`metarl.sampling.workers`). An env class that names a :class:`VectorStep` lets the
sampler do better: MuJoCo steps every env on native threads (see :class:`VectorStepper` for
the two ways), the MuJoCo fields the env reads are gathered into ``[n, ...]`` arrays, and one
:meth:`VectorStep.outputs` call computes every env's observation, reward and termination from
them. On 2 cores this is 1.3x (Ant) to 2.3x (HalfCheetah) the speed of worker processes
(experiments/RESULTS.md).

An env class opts in with a class attribute::

    class MyEnv(MujocoEnv):
        vector_step = MyVectorStep     # a VectorStep subclass

(An env without a physics engine, whose state is a few NumPy arrays, names an
:class:`metarl.array_step.ArrayStep` the same way.) A VectorStep must reproduce its env's
``step`` exactly, to the bit. The bundled families' tests check this through the sampler
(``vectorized=True`` against ``vectorized=False``, which steps each env through its Gymnasium
``step``), and a family author should test theirs the same way.

This module belongs to the env layer (a family module imports it to name its step, without
importing the sampler); the sampler (:mod:`metarl.sampling.env_slots`) runs the steppers.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

import mujoco
import numpy as np

from metarl.array_step import BatchStep, vector_step_of
from metarl.instability import finite_rows
from metarl.mujoco.bad_state import (
    BAD_STATE_WARNINGS,
    bad_state_warned,
    clear_bad_state_warnings,
)

try:  # MuJoCo >= 4.0
    from mujoco import batch as mujoco_batch
except ImportError:  # pragma: no cover - older MuJoCo: threads over the envs' MjData
    mujoco_batch = None

_INTEGRATION_STATE = int(mujoco.mjtState.mjSTATE_INTEGRATION)

#: vector_step_of lives in metarl.array_step (it answers for both kinds of vector step).
__all__ = ["VectorStep", "VectorStepper", "vector_step_of"]


class VectorStep(BatchStep, abc.ABC):
    """The ``step`` of one MuJoCo env class, for many of its envs at once.

    The sampler applies the actions (:meth:`controls`), steps every env's ``MjData`` by
    ``frame_skip`` physics steps as ``MujocoEnv.do_simulation`` does, gathers :attr:`fields`,
    and calls :meth:`outputs`. Task parameters (a target velocity, a goal) differ between envs:
    name them in :attr:`task_attributes`, or read them per env in ``__init__`` into arrays, and
    index them with ``rows``.

    Args:
        envs: the unwrapped envs, all of the class that names this VectorStep.
    """

    #: The ``MjData`` fields :meth:`outputs` reads, gathered into ``[n, *shape]`` arrays after
    #: every step (and after reset, for the first step's ``before``).
    fields: ClassVar[tuple[str, ...]] = ("qpos", "qvel")
    #: Whether the env runs ``mj_rnePostConstraint`` after ``mj_step`` (as Gymnasium's
    #: ``MujocoEnv`` does), which :attr:`fields` such as ``cfrc_ext`` need.
    post_constraint: ClassVar[bool] = False
    #: Whether every env of the class has the same ``MjModel`` whatever its task (the task
    #: changes only the reward): they are then all stepped on one model, which stays in the
    #: CPU cache. Leave False if ``set_task`` changes the model (masses, frictions ...).
    same_model: ClassVar[bool] = False

    def __init__(self, envs: Sequence[Any]) -> None:
        super().__init__(envs)
        self.frame_skip = int(self.shared("frame_skip"))
        self.dt = float(self.shared("dt"))

    def controls(self, rows: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """The controls written to ``data.ctrl`` for ``actions`` (clipped, in the action
        space's dtype) of envs ``rows``; by default the actions themselves."""
        return actions

    @abc.abstractmethod
    def outputs(
        self,
        rows: np.ndarray,
        before: Mapping[str, np.ndarray],
        after: Mapping[str, np.ndarray],
        actions: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(observations [m, obs_dim], rewards [m], terminated [m])`` of envs ``rows``.

        Args:
            rows: indices (into ``envs``) of the m envs that were stepped.
            before: :attr:`fields` of those envs before the step, ``[m, ...]`` each.
            after: the same after the step. (Both may be read-only: compute new arrays.)
            actions: the actions given to ``step`` (clipped, in the action space's dtype).
        """


class VectorStepper:
    """Steps a list of envs of one VectorStep class, on ``num_threads`` threads.

    The physics runs one of two ways, with the same results to the bit, whatever the number
    of threads (each env's state evolves on its own):

    - **MuJoCo's batch** (``mujoco.batch.Batch``): each env's state is copied into a row of
      the batch right after its reset (:meth:`capture`), and MuJoCo's native thread pool steps
      the rows, each loaded in turn into one ``MjData`` per thread, which stays in the CPU
      cache. This reaches the bare ``mj_step`` speed on every core. The envs' own ``MjData``
      are not advanced, so one env can serve several rows: reset it, capture it into row k,
      reset it again for row k + 1 (the sampler keeps one env per task this way).
    - **Threads over the envs' own ``MjData``**, when the step needs what only a whole
      ``MjData`` holds after the step (:attr:`VectorStep.post_constraint`, e.g. Ant's contact
      forces): a pool of Python threads, each stepping a contiguous share of the envs
      (``mj_step`` releases the GIL).

    Args:
        envs: the unwrapped env of each row; with MuJoCo's batch (:meth:`uses_batch`) an env
            may appear in several rows.
        step: their VectorStep class.
        num_threads: threads stepping the physics (0 or 1: the calling thread).
        pool: a thread pool of at least ``num_threads`` threads, for the second way; made
            on demand by this callable.
    """

    def __init__(
        self,
        envs: Sequence[Any],
        step: type[VectorStep],
        num_threads: int,
        pool: Callable[[], ThreadPoolExecutor],
    ) -> None:
        step.check_envs(envs)
        self.step_fn = step(envs)
        #: What is gathered: the step's fields, and always qpos and qvel (checked finite).
        self._fields = tuple(dict.fromkeys(("qpos", "qvel", *self.step_fn.fields)))
        self._models = [env.model for env in envs]
        self._counts = [env.data.warning.number for env in envs]  # live views
        if step.same_model:  # one model for every env: it stays in the CPU cache
            self._models = [envs[0].model] * len(envs)
        self._datas = [env.data for env in envs]
        #: Each row's ``ctrl`` and gathered fields as arrays over its ``MjData`` (made once:
        #: an ``MjData`` attribute makes a new array at every access).
        self._views = [self._views_of(data) for data in self._datas]
        self._threads = max(1, num_threads)
        if not self.uses_batch(step) and len({id(d) for d in self._datas}) < len(envs):
            raise ValueError(
                f"{step.__name__} steps each env's own MjData, so every row needs its own env"
            )
        self._state = {  # the gathered fields of every row, [n, ...] each
            name: np.zeros((len(envs), *np.shape(getattr(envs[0].data, name))))
            for name in self._fields
        }
        self._batch: Any = None
        self._pool: ThreadPoolExecutor | None = None
        if self.uses_batch(step):
            self._batch = mujoco_batch.Batch(envs[0].model, nsim=len(envs), nthread=self._threads)
            if not step.same_model:
                self._batch.set_models(self._models)
        else:
            self._pool = pool() if self._threads > 1 else None

    def _views_of(self, data: Any) -> tuple[np.ndarray, list[np.ndarray]]:
        return data.ctrl, [getattr(data, name) for name in self._fields]

    @staticmethod
    def uses_batch(step: type[VectorStep]) -> bool:
        """Whether envs of ``step`` are stepped through MuJoCo's batch (else: threads over
        each env's own ``MjData``)."""
        return mujoco_batch is not None and not step.post_constraint

    def replace(self, rows: Sequence[int], envs: Sequence[Any]) -> None:
        """Rows ``rows`` now run ``envs`` (unwrapped; retasked in place, or new envs of the
        same class, each in one row only): their task attributes, models and ``MjData``.
        Call :meth:`capture` after resetting them."""
        step_cls = type(self.step_fn)
        for k, env in zip(rows, envs, strict=True):
            self.step_fn.set_env(k, env)  # checks its class, reads its task attributes
            self._datas[k] = env.data
            self._views[k] = self._views_of(env.data)
            self._counts[k] = env.data.warning.number
            if not step_cls.same_model:
                self._models[k] = env.model
        if self._batch is not None and not step_cls.same_model:
            self._batch.set_models(self._models)  # also after editing a model in place

    def capture(self, k: int) -> None:
        """Take row ``k``'s env state (right after its reset): its fields, and into MuJoCo's
        batch."""
        data = self._datas[k]
        for name, value in self._state.items():
            value[k] = getattr(data, name)
        if self._batch is not None:
            mujoco.mj_getState(self._models[k], data, self._batch.state[k], _INTEGRATION_STATE)

    def step(self, rows: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, ...]:
        """Step envs ``rows`` with ``actions`` (one row each).

        Returns ``(obs, rewards, terminated, mujoco_unstable)`` for those rows, where
        ``mujoco_unstable`` flags MuJoCo's bad-state warnings and non-finite states, as
        :func:`metarl.mujoco.bad_state.mujoco_unstable` does for one env.
        """
        fn = self.step_fn
        controls = fn.controls(rows, actions)
        if len(rows) == len(self._datas):  # every row (rows are sorted): no copies
            before, self._state = (
                self._state,
                {name: np.empty_like(value) for name, value in self._state.items()},
            )
        else:
            before = {name: value[rows] for name, value in self._state.items()}
        if self._batch is not None:
            warned = self._step_batch(rows, controls)
        else:
            warned = self._step_threads(rows, controls)
        if len(rows) == len(self._datas):
            after = {name: _read_only(value) for name, value in self._state.items()}
            before = {name: _read_only(value) for name, value in before.items()}
        else:
            after = {name: value[rows] for name, value in self._state.items()}
        obs, rewards, terminated = fn.outputs(rows, before, after, actions)
        finite = finite_rows(after["qpos"]) & finite_rows(after["qvel"])
        return obs, rewards, terminated, warned | ~finite

    def _step_batch(self, rows: np.ndarray, controls: np.ndarray) -> np.ndarray:
        batch = self._batch
        every = len(rows) == len(self._datas)
        counts = batch.warning[:, :, 1]  # (number, not lastinfo) of each warning
        counts[:, BAD_STATE_WARNINGS] = 0
        if every:
            batch.ctrl[:] = controls
            batch.step(nstep=self.step_fn.frame_skip)
        else:
            batch.ctrl[rows] = controls
            batch.step(ids=rows, nstep=self.step_fn.frame_skip)
        for name in self._fields:
            if every:
                np.copyto(self._state[name], batch.bind(name))
            else:
                self._state[name][rows] = batch.bind(name)[rows]
        return counts[rows][:, BAD_STATE_WARNINGS].any(axis=1)

    def _step_threads(self, rows: np.ndarray, controls: np.ndarray) -> np.ndarray:
        warned = np.zeros(len(rows), dtype=bool)
        post, nstep = self.step_fn.post_constraint, self.step_fn.frame_skip
        outs = [self._state[name] for name in self._fields]

        def run(share: np.ndarray) -> None:
            for j in share:
                k = rows[j]
                model, data, counts = self._models[k], self._datas[k], self._counts[k]
                ctrl, fields = self._views[k]
                clear_bad_state_warnings(counts)
                ctrl[:] = controls[j]
                mujoco.mj_step(model, data, nstep=nstep)
                if post:
                    mujoco.mj_rnePostConstraint(model, data)
                for field, out in zip(fields, outs, strict=True):
                    out[k] = field
                warned[j] = bad_state_warned(counts)

        shares = [s for s in np.array_split(np.arange(len(rows)), self._threads) if len(s)]
        if self._pool is None or len(shares) <= 1:
            run(np.arange(len(rows)))
        else:
            for future in [self._pool.submit(run, share) for share in shares]:
                future.result()
        return warned


def _read_only(array: np.ndarray) -> np.ndarray:
    """A read-only view of ``array``: a step's gathered state is handed to
    :meth:`VectorStep.outputs` without a copy, and must not be changed there."""
    view = array.view()
    view.flags.writeable = False
    return view
