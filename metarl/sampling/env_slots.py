"""The envs one sampler worker steps: one per episode slot, kept between calls.

A worker (a subprocess, or the sampler's own process with ``num_workers=0`` or vectorized envs)
owns a contiguous range of the batch's episode slots. For each slot it holds a
``family.make_env`` env (slots of one task share one when the vectorized step holds their
states, see :meth:`EnvSlots.assign`), so every guarantee of the task envs (action checks and
clipping, unstable-physics detection, the time limit) holds in the sampler exactly as for a
user stepping the env by hand.

Building a MuJoCo env costs milliseconds (it parses the XML), so envs outlive a call: an env
whose task comes back (MAML samples the same tasks before and after adaptation) is reused as is,
and an env of a task that is gone is switched to a new task in place when its env supports
``set_task`` (see :meth:`metarl.TaskFamily.retask_env`); otherwise a new env is built.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import gymnasium as gym
import numpy as np

from metarl.array_step import ArrayStep, ArrayStepper, BatchStep, vector_step_of
from metarl.env_guard import guard_of, reward_terms
from metarl.family import TaskFamily
from metarl.instability import guard_steps
from metarl.mujoco.bad_state import clear_bad_state_warnings, mujoco_unstable
from metarl.mujoco.vector_step import VectorStep, VectorStepper
from metarl.task import Task


class EnvSlots:
    """Step a list of task envs together; arrays in, arrays out.

    Stepping applies the guarantees of :class:`~metarl.TaskGuard` to the whole batch at once
    (clipping every action in one call, applying the guard's rule to every step in one call,
    :func:`metarl.instability.guard_steps`) and steps the env inside the guard directly: the
    guard's per-env Python costs about a quarter of a HalfCheetah step. The rule is the
    guard's own: an episode whose physics goes unstable ends there, with reward 0 and its last
    finite observation, flagged in ``sim_unstable``. The replay tests check the two agree step
    for step.

    With ``vectorized=True`` the envs' own ``step`` is bypassed: the vector step their class
    names steps them all at once (:mod:`metarl.array_step`): a
    :class:`~metarl.mujoco.VectorStep`, the physics on ``num_threads`` threads
    (:class:`~metarl.mujoco.VectorStepper`), or an :class:`~metarl.array_step.ArrayStep`, one
    NumPy call for every env (:class:`~metarl.array_step.ArrayStepper`). The results are the
    same to the bit.

    Args:
        family: the task family every env belongs to.
        obs_dim: size of the (flattened) observation, checked on every env.
        act_dim: size of an action, checked on every env.
        vectorized: step the envs through their class's vector step.
        num_threads: threads stepping MuJoCo's physics when vectorized (0 or 1: the calling
            thread).
        share_envs: let the slots of one task share an env where the vectorized step holds
            their states (see :meth:`assign`); :meth:`reset_slots` needs False.
    """

    def __init__(
        self,
        family: TaskFamily,
        obs_dim: int,
        act_dim: int,
        *,
        vectorized: bool = False,
        num_threads: int = 0,
        share_envs: bool = True,
    ) -> None:
        self.family = family
        self.share_envs = share_envs
        self.obs_dim, self.act_dim = obs_dim, act_dim
        self.vectorized = vectorized
        self.num_threads = num_threads
        self._pool: ThreadPoolExecutor | None = None
        self._stepper: VectorStepper | ArrayStepper | None = None
        #: The env of each slot; slots of one task may share one (see :meth:`assign`).
        self.envs: list[gym.Env] = []
        self.tasks: list[Task] = []
        self._owned: list[gym.Env] = []  # every env built, each once
        self._owned_tasks: list[Task] = []
        self._inner: list[gym.Env] = []
        self._data: list[Any] = []
        self._counts: list[np.ndarray | None] = []
        self._low = self._high = np.zeros((0, act_dim))
        self._dtype: Any = np.float32
        self._active = np.zeros(0, dtype=bool)
        self._elapsed = np.zeros(0, dtype=np.int64)  # steps of each slot's episode
        self._obs = np.zeros((0, obs_dim))

    def _flat_obs(self, obs: Any, k: int) -> np.ndarray:
        flat = np.asarray(obs, dtype=np.float64).reshape(-1)
        if flat.shape != (self.obs_dim,):
            raise ValueError(
                f"the env of {self.tasks[k]!r} returned an observation of shape "
                f"{np.shape(obs)}; the sampler expects {self.obs_dim} numbers"
            )
        return flat

    def assign(self, tasks: Sequence[Task]) -> None:
        """Give slot k an env of ``tasks[k]``, reusing the envs already built (:meth:`reset`
        does, before resetting them).

        When the vectorized step holds each slot's state (MuJoCo's batch, or an
        :class:`~metarl.array_step.ArrayStep`), the slots of one task share one env, which
        only serves to reset into (see :meth:`reset`). Each MuJoCo env reserves megabytes for
        its ``MjData``; 800 of them slow everything else in the process (PyTorch's
        optimisation step ran 2x slower), so the batch path keeps one per task. Otherwise
        every slot has its own env.
        """
        share = self._shares_envs(tasks[0]) if tasks else False
        wanted = list(dict.fromkeys(tasks)) if share else list(tasks)
        spare: dict[Task, list[gym.Env]] = defaultdict(list)
        for env, task in zip(self._owned, self._owned_tasks, strict=True):
            spare[task].append(env)
        owned: list[gym.Env | None] = [spare[t].pop() if spare[t] else None for t in wanted]
        leftovers = [env for pool in spare.values() for env in pool]
        for k, task in enumerate(wanted):
            if owned[k] is not None:
                continue
            env = leftovers.pop() if leftovers else None
            if env is not None and not self.family.retask_env(env, task):
                env.close()
                env = None
            owned[k] = env if env is not None else self._new_env(task)
        for env in leftovers:
            env.close()
        self._owned, self._owned_tasks = owned, wanted  # type: ignore[assignment]
        env_of = dict(zip(wanted, owned, strict=True)) if share else None
        self.envs = [env_of[t] for t in tasks] if env_of else list(self._owned)
        self.tasks = list(tasks)
        guards = [guard_of(env) for env in self.envs]
        self._inner = [g.env for g in guards]
        self._data = [g.mj_data for g in guards]
        self._counts = [g.warning_counts for g in guards]
        spaces = [g.action_space for g in guards]
        self._low = np.array([s.low for s in spaces], dtype=np.float64).reshape(-1, self.act_dim)
        self._high = np.array([s.high for s in spaces], dtype=np.float64).reshape(-1, self.act_dim)
        self._dtype = spaces[0].dtype if spaces else np.float32
        if self.vectorized and self.envs:
            self._stepper = self._new_stepper(self._vector_step(self.envs[0]))

    def _vector_step(self, env: gym.Env) -> type[BatchStep]:
        step = vector_step_of(env)
        if step is None:
            raise ValueError(
                f"{self.family.id}: {type(env.unwrapped).__name__} names no vector_step, so "
                f"its envs cannot be stepped vectorized"
            )
        return step

    def _new_stepper(self, step: type[BatchStep]) -> VectorStepper | ArrayStepper:
        """The stepper of this kind of vector step, for the slots' envs."""
        unwrapped = [env.unwrapped for env in self.envs]
        if issubclass(step, ArrayStep):
            return ArrayStepper(unwrapped, step)
        if issubclass(step, VectorStep):
            return VectorStepper(unwrapped, step, self.num_threads, self._thread_pool)
        raise TypeError(
            f"{step.__name__} is neither an ArrayStep nor a VectorStep; a vector_step "
            f"subclasses one of them"
        )

    def _shares_envs(self, task: Task) -> bool:
        """Whether the slots of one task share an env: vectorized by a step that holds every
        slot's state (an ArrayStep always, a VectorStep through MuJoCo's batch).

        The answer depends on the env class, so the first call builds an env (of ``task``),
        which joins the owned envs for reuse.
        """
        if not (self.vectorized and self.share_envs):
            return False
        if not self._owned:
            self._owned, self._owned_tasks = [self._new_env(task)], [task]
        step = self._vector_step(self._owned[0])
        return issubclass(step, ArrayStep) or VectorStepper.uses_batch(step)

    def _thread_pool(self) -> ThreadPoolExecutor:
        """The threads stepping MuJoCo envs' own MjData when vectorized (made on first use)."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.num_threads, thread_name_prefix="metarl-physics")
        return self._pool

    def _new_env(self, task: Task) -> gym.Env:
        env = self.family.make_env(task)
        space = env.action_space
        if not isinstance(space, gym.spaces.Box) or space.shape != (self.act_dim,):
            raise ValueError(
                f"the env of {task!r} has action space {space}; the sampler expects a Box of "
                f"shape ({self.act_dim},)"
            )
        return env

    def reset(self, tasks: Sequence[Task], seeds: Sequence[int]) -> np.ndarray:
        """Reset slot k to ``tasks[k]`` with ``seeds[k]``; the observations ``[n, obs_dim]``."""
        self.assign(tasks)
        n = len(tasks)
        self._obs = np.zeros((n, self.obs_dim))
        self._active = np.zeros(n, dtype=bool)
        self._elapsed = np.zeros(n, dtype=np.int64)
        self._start(range(n), seeds)
        return self._obs  # never written in place: step() builds a new array

    def reset_slots(
        self, slots: Sequence[int], tasks: Sequence[Task], seeds: Sequence[int]
    ) -> np.ndarray:
        """Start a new episode in each of ``slots`` (distinct), of ``tasks[i]`` with
        ``seeds[i]``, while the other slots go on; their observations ``[len(slots),
        obs_dim]``. A slot's env is switched to its new task in place when it supports
        ``set_task``, else rebuilt. Needs :meth:`reset` first, and ``share_envs=False``."""
        if self.share_envs and self.vectorized:
            raise RuntimeError("reset_slots needs EnvSlots(..., share_envs=False)")
        if len(self._active) == 0:
            raise RuntimeError("reset_slots() before reset(): reset every slot first")
        slots = [int(k) for k in slots]
        if len(tasks) != len(slots) or len(seeds) != len(slots):
            raise ValueError(f"{len(slots)} slots, {len(tasks)} tasks and {len(seeds)} seeds")
        changed = [(k, task) for k, task in zip(slots, tasks, strict=True) if task != self.tasks[k]]
        for k, task in changed:
            env = self.envs[k]
            if not self.family.retask_env(env, task):
                env.close()
                env = self._new_env(task)
            self.envs[k] = self._owned[k] = env
            self.tasks[k] = self._owned_tasks[k] = task
            guard = guard_of(env)
            self._inner[k], self._data[k] = guard.env, guard.mj_data
            self._counts[k] = guard.warning_counts
            self._low[k], self._high[k] = guard.action_space.low, guard.action_space.high
        if self._stepper is not None and changed:
            self._stepper.replace(
                [k for k, _ in changed], [self.envs[k].unwrapped for k, _ in changed]
            )
        self._obs = self._obs.copy()  # the last one returned stays as it was
        self._start(slots, seeds)
        return self._obs[slots]

    def _start(self, slots: Sequence[int] | range, seeds: Sequence[int]) -> None:
        """Reset the envs of ``slots`` (already holding their tasks) into ``self._obs``; each
        env's guard refuses a non-finite first observation."""
        for k, seed in zip(slots, seeds, strict=True):
            obs, _ = self.envs[k].reset(seed=int(seed))
            self._obs[k] = self._flat_obs(obs, k)
            if self._stepper is not None:  # before the env is reset for another slot
                self._stepper.capture(k)
            self._active[k] = True
            self._elapsed[k] = 0

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, ...]:
        """Step every slot whose episode is still running with its row of ``actions``.

        Returns ``(obs, rewards, terminated, truncated, sim_unstable)``, one row per slot;
        slots whose episode had already ended report zeros (rewards) and False. An episode
        is truncated at the family's horizon (the envs' ``TimeLimit``, which the slots step
        inside of).
        """
        n = len(self.envs)
        if actions.shape != (n, self.act_dim):
            raise ValueError(f"actions of shape {actions.shape} for {n} envs of {self.act_dim}")
        if not np.isfinite(actions).all():
            raise ValueError("non-finite action given to the sampler's envs")
        clipped = np.clip(actions, self._low, self._high).astype(self._dtype)
        if self._stepper is not None and self._active.all():
            return self._step_every_slot(self._stepper, clipped)
        new_obs = self._obs.copy()
        rewards = np.zeros(n)
        terminated = np.zeros(n, dtype=bool)
        truncated = np.zeros(n, dtype=bool)
        unstable = np.zeros(n, dtype=bool)
        active = np.flatnonzero(self._active)
        term_sums: np.ndarray | None = None
        if self.vectorized and self._stepper is None:
            raise RuntimeError("step() before reset(): the vectorized envs need a reset first")
        if self._stepper is not None:
            obs, rewards[active], terminated[active], unstable[active] = self._stepper.step(
                active, clipped[active]
            )
            new_obs[active] = self._checked_vector_obs(self._stepper, obs, len(active))
        else:
            term_sums = np.zeros(len(active))
            for j, k in enumerate(active):
                counts = self._counts[k]
                if counts is not None:
                    clear_bad_state_warnings(counts)
                obs, reward, terminated[k], truncated[k], info = self._inner[k].step(clipped[k])
                new_obs[k] = self._flat_obs(obs, k)
                rewards[k] = reward
                term_sums[j] = sum(reward_terms(info).values(), 0.0)
                if counts is not None:
                    unstable[k] = mujoco_unstable(self._data[k], counts)
        out = guard_steps(
            new_obs[active],
            self._obs[active],
            rewards[active],
            terminated[active],
            unstable[active],
            term_sums,
        )
        new_obs[active], rewards[active] = out.obs, out.rewards
        terminated[active], unstable[active] = out.terminated, out.unstable
        self._elapsed[active] += 1
        truncated[active] |= self._elapsed[active] >= self.family.horizon
        self._obs = new_obs
        self._active &= ~(terminated | truncated)
        return new_obs, rewards, terminated, truncated, unstable

    def _step_every_slot(
        self, stepper: VectorStepper | ArrayStepper, clipped: np.ndarray
    ) -> tuple[np.ndarray, ...]:
        """:meth:`step` when a vector step steps the slots and every slot's episode is
        running (the common case): the same, on whole arrays rather than selected rows."""
        n = len(self.envs)
        obs, rewards, terminated, unstable = stepper.step(np.arange(n), clipped)
        obs = self._checked_vector_obs(stepper, obs, n)
        out = guard_steps(obs, self._obs, rewards, terminated, unstable)
        self._elapsed += 1
        truncated = self._elapsed >= self.family.horizon
        self._obs = out.obs
        self._active &= ~(out.terminated | truncated)
        return out.obs, out.rewards, out.terminated, truncated, out.unstable

    def _checked_vector_obs(
        self, stepper: VectorStepper | ArrayStepper, obs: np.ndarray, rows: int
    ) -> np.ndarray:
        """``obs`` from a vector step for ``rows`` envs, if it has the expected shape."""
        if obs.shape != (rows, self.obs_dim):
            raise ValueError(
                f"{type(stepper.step_fn).__name__} returned observations of shape "
                f"{obs.shape} for {rows} envs; the sampler expects {self.obs_dim} numbers each"
            )
        return obs

    def close(self) -> None:
        for env in self._owned:
            env.close()
        self._owned, self._owned_tasks = [], []
        self.envs, self.tasks, self._inner, self._data, self._counts = [], [], [], [], []
        self._stepper = None
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
