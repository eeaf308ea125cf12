"""The ``ray`` backend: envs stepped by Ray actors, for users who outgrow one machine.

Each actor holds the envs of a contiguous share of the episode slots, exactly as a local
worker process does (:class:`~metarl.sampling.env_slots.EnvSlots`, vectorized when the family
supports it), so the batches are the same to the bit as with the ``local`` backend. The
sampler talks to the actors once per time step, so Ray pays off when the physics of a time
step outweighs a round trip to the cluster (a few milliseconds): many tasks, episodes or
expensive robots.

Ray is an optional dependency: ``pip install "metarl[ray]"``. The sampler connects to the
cluster Ray is already initialised with (``ray.init(...)`` before creating the sampler), or
else calls ``ray.init()``, which joins the cluster named by ``RAY_ADDRESS`` or starts a local
one.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

from metarl.family import TaskFamily
from metarl.sampling.env_slots import EnvSlots
from metarl.sampling.workers import SharedWorkers, WorkerError


def import_ray() -> Any:
    """The ``ray`` module, or an ImportError that says how to install it."""
    try:
        import ray
    except ImportError:
        raise ImportError(
            'the "ray" sampler backend needs Ray: pip install "metarl[ray]"'
        ) from None
    return ray


class EnvSlotsActor:
    """What runs inside each Ray actor: one :class:`EnvSlots`, stepped on the actor's thread."""

    def __init__(self, family: TaskFamily, obs_dim: int, act_dim: int, vectorized: bool) -> None:
        self.slots = EnvSlots(family, obs_dim, act_dim, vectorized=vectorized)

    def ready(self) -> bool:
        return True

    def reset(self, tasks: list[Any], seeds: list[int]) -> np.ndarray:
        return self.slots.reset(tasks, seeds)

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, ...]:
        return self.slots.step(actions)


class RayWorkers(SharedWorkers):
    """``num_workers`` Ray actors (one CPU each), each stepping a share of the episode slots.

    Args:
        num_workers: actors to start; None: one per CPU of the cluster.
    """

    def __init__(
        self,
        family: TaskFamily,
        obs_dim: int,
        act_dim: int,
        num_workers: int | None,
        vectorized: bool,
    ) -> None:
        ray = self._ray = import_ray()
        if not ray.is_initialized():
            ray.init(log_to_driver=False)
        if num_workers is None:
            num_workers = max(1, int(ray.cluster_resources().get("CPU", 1)))
        self.num_workers = num_workers
        self._shares = []
        actor = ray.remote(num_cpus=1)(EnvSlotsActor)
        self._actors = [
            actor.remote(family, obs_dim, act_dim, vectorized) for _ in range(num_workers)
        ]
        try:
            self._get([a.ready.remote() for a in self._actors])
        except BaseException:
            self.close()
            raise

    def _get(self, refs: list[Any]) -> list[Any]:
        """The replies; a dead actor raises :class:`WorkerError`, an exception in an actor is
        re-raised as Ray raises it (an instance of the original exception's type)."""
        try:
            return self._ray.get(refs)
        except self._ray.exceptions.RayActorError as err:
            raise WorkerError(f"a Ray sampler actor died: {err}") from None

    def _call(self, command: str, payloads: list[tuple[Any, ...]]) -> list[Any]:
        refs = [
            getattr(actor, command).remote(*payload)
            for actor, payload in zip(self._actors, payloads, strict=True)
        ]
        return self._get(refs)

    def close(self) -> None:
        for actor in self._actors:
            with contextlib.suppress(Exception):
                self._ray.kill(actor)
        self._actors = []
