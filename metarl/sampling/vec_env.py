"""A Stable-Baselines3 ``VecEnv`` of one task family, stepped by metarl's batched physics.

For multi-task RL without meta-learning (the pre-trained and oracle baselines, or any SB3
user): ``num_envs`` envs of a family, each drawing a new task from the family's training
distribution at every episode (or keeping a fixed task), stepped together the way the
sampler steps them (:class:`~metarl.sampling.env_slots.EnvSlots`): for a vectorized family
MuJoCo advances every env on native threads and NumPy computes every observation and
reward at once (a pure-NumPy family's whole step is one NumPy call), bit-identical to each
env's own ``step``. SB3's algorithms (PPO, SAC, ...)
train on it unchanged::

    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecMonitor

    env = VecMonitor(metarl.FamilyVecEnv("HalfCheetahVel-v0", num_envs=16, seed=0))
    PPO("MlpPolicy", env).learn(100_000)

The guard's guarantees hold as for the family's own envs (:class:`~metarl.TaskGuard`): a
non-finite action raises ``ValueError``, actions are clipped to the action space, and an
episode whose physics goes unstable ends there with reward 0, its last finite observation
and ``info["sim_unstable"] = True``. Episodes are truncated at the family's horizon
(``info["TimeLimit.truncated"]``, so SB3 bootstraps them). ``info["task"]`` is the env's
task; with ``observe_task=True`` its :meth:`~metarl.TaskFamily.task_features` are appended
to every observation (what an oracle sees). Reward terms are not reported in ``info`` (the
vectorized step computes the reward only); the family's own envs report them.

Reproducibility: env ``i`` draws its tasks from a generator of its own and resets its
episode ``e`` with a seed of its own (:func:`metarl.seeds.vec_env_reset`), so the same
seed (the constructor's, or the last :meth:`FamilyVecEnv.seed`) gives the same episodes,
whatever the number of physics threads.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.env_util import is_wrapped
from stable_baselines3.common.vec_env.base_vec_env import (
    VecEnv,
    VecEnvIndices,
    VecEnvObs,
    VecEnvStepReturn,
)

from metarl import seeds
from metarl.family import TaskFamily
from metarl.registry import make_family
from metarl.sampling.env_slots import EnvSlots
from metarl.sampling.sampler import check_seed, default_num_workers, inspect_family
from metarl.task import Task


class FamilyVecEnv(VecEnv):
    """``num_envs`` envs of ``family`` as one SB3 ``VecEnv``; see the module doc.

    Args:
        family: a :class:`~metarl.TaskFamily` or a registered family id.
        num_envs: how many envs (default: one per task of ``tasks``).
        tasks: None (default): every env draws a new task from the family's training
            distribution at every episode. A list of ``num_envs`` tasks: env ``i`` always
            runs ``tasks[i]`` (per-task training); a single :class:`~metarl.Task`: every env
            runs it.
        observe_task: append the task's features (``family.task_features``) to every
            observation.
        seed: the root of the task draws and the reset seeds (``seed()`` re-roots them).
        num_threads: physics threads for a vectorized family (None: every core this process
            may use).
        vectorized: step the envs through their class's vector step, a
            :class:`~metarl.mujoco.VectorStep` or an :class:`~metarl.array_step.ArrayStep`
            (None: when the family's envs have one; False: each env's own ``step``, in this
            process).
    """

    def __init__(
        self,
        family: TaskFamily | str,
        num_envs: int | None = None,
        *,
        tasks: Sequence[Task] | Task | None = None,
        observe_task: bool = False,
        seed: int = 0,
        num_threads: int | None = None,
        vectorized: bool | None = None,
    ) -> None:
        self.family = make_family(family) if isinstance(family, str) else family
        if not isinstance(self.family, TaskFamily):
            raise TypeError(
                f"family must be a TaskFamily or a registered id, got {type(family).__name__}"
            )
        self.fixed_tasks = self._check_tasks(tasks, num_envs)
        if num_envs is None:
            if self.fixed_tasks is None:
                raise ValueError("give num_envs (or tasks, one per env)")
            num_envs = len(self.fixed_tasks)
        if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"num_envs must be an int >= 1, got {num_envs!r}")
        if self.fixed_tasks is not None and len(self.fixed_tasks) == 1 < num_envs:
            self.fixed_tasks = self.fixed_tasks * num_envs
        obs_dim, act_dim, vectorizable = inspect_family(self.family)
        if vectorized is None:
            vectorized = vectorizable
        elif vectorized and not vectorizable:
            raise ValueError(
                f"{self.family.id}: its env class names no vector_step, so it cannot be "
                f"vectorized; use vectorized=None or False"
            )
        threads = default_num_workers() if num_threads is None else num_threads
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
            raise ValueError(f"num_threads must be an int >= 0 (or None), got {num_threads!r}")
        self.observe_task = bool(observe_task)
        self._slots = EnvSlots(
            self.family,
            obs_dim,
            act_dim,
            vectorized=bool(vectorized),
            num_threads=threads,
            share_envs=False,
        )
        self._root = check_seed(seed)
        self._episodes = np.zeros(num_envs, dtype=np.int64)  # episodes started, per env
        self._task_rngs: list[np.random.Generator] = []
        self._actions: np.ndarray | None = None
        self._obs_dim, self._act_dim = obs_dim, act_dim
        self.num_envs = num_envs
        self._reroot(self._root)
        self._started = False  # reset() has been called
        # Build the envs now (SB3's VecEnv reads their render_mode); reset() gives them tasks.
        self._slots.assign(self.fixed_tasks or [self.family.default_task()] * num_envs)
        env = self._slots.envs[0]
        super().__init__(num_envs, self._observation_space(env), env.action_space)

    # ------------------------------------------------------------------ set-up
    def _check_tasks(
        self, tasks: Sequence[Task] | Task | None, num_envs: int | None
    ) -> list[Task] | None:
        if tasks is None:
            return None
        task_list = [tasks] if isinstance(tasks, Task) else list(tasks)
        if not task_list:
            raise ValueError("tasks is empty; give one task per env, one task, or None")
        if num_envs is not None and len(task_list) not in (1, num_envs):
            raise ValueError(
                f"{len(task_list)} tasks for {num_envs} envs; give one per env, a single "
                f"task for all, or None (a new task every episode)"
            )
        return [self.family._check_own(task) for task in task_list]

    def _observation_space(self, env: gym.Env) -> gym.spaces.Box:
        space = env.observation_space
        if not self.observe_task:
            return space
        n = self.family.task_features(self._slots.tasks[0]).size
        self._features = np.zeros((self.num_envs, n))
        return gym.spaces.Box(
            np.concatenate([np.ravel(space.low), np.full(n, -np.inf)]).astype(space.dtype),
            np.concatenate([np.ravel(space.high), np.full(n, np.inf)]).astype(space.dtype),
            dtype=space.dtype,
        )

    def _reroot(self, seed: int) -> None:
        self._root = seed
        self._episodes[:] = 0
        self._task_rngs = [
            np.random.default_rng(seeds.vec_env_tasks(seed, i)) for i in range(self.num_envs)
        ]

    def _next_tasks(self, envs: Sequence[int] | range) -> list[Task]:
        if self.fixed_tasks is not None:
            return [self.fixed_tasks[i] for i in envs]
        return [self.family.sample_task(self._task_rngs[i]) for i in envs]

    def _next_seeds(self, envs: Sequence[int] | range) -> list[int]:
        reset_seeds = []
        for i in envs:
            reset_seeds.append(seeds.vec_env_reset(self._root, i, int(self._episodes[i])))
            self._episodes[i] += 1
        return reset_seeds

    def _cache_features(self, envs: Sequence[int] | range) -> None:
        """After envs ``envs`` started new episodes: their tasks' features, computed once
        per episode (they hold for all of its steps)."""
        if self.observe_task:
            for i in envs:
                self._features[i] = self.family.task_features(self._slots.tasks[i])

    def _observe(self, obs: np.ndarray, envs: Sequence[int] | range) -> np.ndarray:
        """Observations of ``envs`` in the observation space's dtype, with their tasks'
        features appended if ``observe_task``."""
        dtype = self.observation_space.dtype
        if not self.observe_task:
            return obs.astype(dtype)
        return np.concatenate([obs, self._features[list(envs)]], axis=1).astype(dtype)

    # ------------------------------------------------------------------ the VecEnv API
    @property
    def tasks(self) -> list[Task]:
        """The task each env is running now."""
        return list(self._slots.tasks)

    def seed(self, seed: int | None = None) -> Sequence[int | None]:
        """Re-root the task draws and reset seeds at ``seed`` (from the next :meth:`reset`);
        None draws a root from NumPy's global generator, as SB3's VecEnvs do."""
        if seed is None:
            seed = int(np.random.randint(0, 2**32 - 1, dtype=np.uint32))
        self._reroot(check_seed(seed))
        return [seed + i for i in range(self.num_envs)]

    def reset(self) -> VecEnvObs:
        everyone = range(self.num_envs)
        obs = self._slots.reset(self._next_tasks(everyone), self._next_seeds(everyone))
        self._cache_features(everyone)
        self._started = True
        self.reset_infos = [{"task": task} for task in self._slots.tasks]
        self._reset_seeds()
        self._reset_options()
        return self._observe(obs, everyone)

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self) -> VecEnvStepReturn:
        if self._actions is None:
            raise RuntimeError("step_wait() without step_async(actions)")
        if not self._started:
            raise RuntimeError("step() before reset(): reset the FamilyVecEnv first")
        try:
            actions = np.asarray(self._actions, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(
                f"actions must be numbers, shape ({self.num_envs}, {self._act_dim}); got "
                f"{type(self._actions).__name__}"
            ) from None
        finally:
            self._actions = None
        if actions.shape != (self.num_envs, self._act_dim):
            raise ValueError(
                f"actions of shape {actions.shape} for {self.num_envs} envs; expected "
                f"({self.num_envs}, {self._act_dim})"
            )
        obs, rewards, terminated, truncated, unstable = self._slots.step(actions)
        dones = terminated | truncated
        tasks = self._slots.tasks
        infos: list[dict[str, Any]] = [
            {
                "task": tasks[i],
                "sim_unstable": bool(unstable[i]),
                "TimeLimit.truncated": bool(truncated[i] and not terminated[i]),
            }
            for i in range(self.num_envs)
        ]
        observed = self._observe(obs, range(self.num_envs))
        ended = np.flatnonzero(dones).tolist()
        if ended:
            for i in ended:
                infos[i]["terminal_observation"] = observed[i].copy()
            new = self._slots.reset_slots(ended, self._next_tasks(ended), self._next_seeds(ended))
            self._cache_features(ended)
            observed[ended] = self._observe(new, ended)
        return observed, rewards.astype(np.float32), dones, infos

    def close(self) -> None:
        self._slots.close()

    def _envs(self, indices: VecEnvIndices) -> list[gym.Env]:
        return [self._slots.envs[i] for i in self._get_indices(indices)]

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return [env.get_wrapper_attr(attr_name) for env in self._envs(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        for env in self._envs(indices):
            setattr(env, attr_name, value)

    def env_method(
        self,
        method_name: str,
        *method_args: Any,
        indices: VecEnvIndices = None,
        **method_kwargs: Any,
    ) -> list[Any]:
        return [
            env.get_wrapper_attr(method_name)(*method_args, **method_kwargs)
            for env in self._envs(indices)
        ]

    def env_is_wrapped(
        self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None
    ) -> list[bool]:
        return [is_wrapped(env, wrapper_class) for env in self._envs(indices)]

    def __repr__(self) -> str:
        tasks = "a new task every episode" if self.fixed_tasks is None else "fixed tasks"
        return (
            f"FamilyVecEnv({self.family.id!r}, num_envs={self.num_envs}, {tasks}, "
            f"observe_task={self.observe_task}, vectorized={self._slots.vectorized})"
        )
