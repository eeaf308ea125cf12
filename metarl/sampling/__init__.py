"""Batched multi-task sampling: :class:`Sampler` and the :class:`EpisodeBatch` it returns;
:class:`FamilyVecEnv`, the same stepping as a Stable-Baselines3 ``VecEnv``; the backends that
run the envs (:mod:`metarl.sampling.backends`)."""

from metarl.sampling.backends import (
    Backend,
    Workers,
    WorkerSpec,
    backend_names,
    register_backend,
)
from metarl.sampling.episode_batch import EpisodeBatch
from metarl.sampling.recurrent import RecurrentState
from metarl.sampling.sampler import Sampler, default_num_workers
from metarl.sampling.vec_env import FamilyVecEnv
from metarl.sampling.workers import WorkerError

__all__ = [
    "Backend",
    "EpisodeBatch",
    "FamilyVecEnv",
    "RecurrentState",
    "Sampler",
    "WorkerError",
    "WorkerSpec",
    "Workers",
    "backend_names",
    "default_num_workers",
    "register_backend",
]
