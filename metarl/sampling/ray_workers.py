"""The ``ray`` backend: envs stepped by Ray actors, for users who outgrow one machine.

Each actor holds the envs of a contiguous share of the episode slots, exactly as a local
worker process does (:class:`~metarl.sampling.env_slots.EnvSlots`, vectorized when the family
supports it), so the batches are the same to the bit as with the ``local`` backend. The
sampler talks to the actors once per time step, so Ray pays off when the physics of a time
step outweighs a round trip to the cluster (a few milliseconds): many tasks, episodes or
expensive robots.

An actor that dies mid-batch (its node lost, the process killed) is replaced by a new actor,
which replays its share of the batch from the reset (:class:`~metarl.sampling.workers.
SharedWorkers`): the call still returns the same batch. A batch that loses actors more than
``max_restarts`` times raises :class:`~metarl.sampling.workers.WorkerError`.

Ray is an optional dependency: ``pip install "metarl[ray]"``. The sampler connects to the
cluster Ray is already initialised with (``ray.init(...)`` before creating the sampler), or
else calls ``ray.init(address)``: ``address`` names an existing cluster (``"auto"``, or
``"ray://head:10001"`` through Ray Client); ``None`` joins the cluster named by
``RAY_ADDRESS`` or starts a local one.
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
        address: the cluster to join when Ray is not initialised yet (see the module's
            docstring); ignored when it is.
    """

    def __init__(
        self,
        family: TaskFamily,
        obs_dim: int,
        act_dim: int,
        num_workers: int | None,
        vectorized: bool,
        address: str | None = None,
    ) -> None:
        ray = self._ray = import_ray()
        if not ray.is_initialized():
            ray.init(address=address, log_to_driver=False)
        if num_workers is None:
            num_workers = max(1, int(ray.cluster_resources().get("CPU", 1)))
        self.num_workers = num_workers
        self._shares = []
        self._actor_class = ray.remote(num_cpus=1)(EnvSlotsActor)
        self._args = (family, obs_dim, act_dim, vectorized)
        self._actors = [self._actor_class.remote(*self._args) for _ in range(num_workers)]
        self._pending: list[Any] = [None] * num_workers
        try:
            for i in range(num_workers):
                self._send(i, "ready", ())
            for i in range(num_workers):
                self._receive(i)
        except BaseException:
            self.close()
            raise

    def _send(self, i: int, command: str, payload: tuple[Any, ...]) -> None:
        self._pending[i] = getattr(self._actors[i], command).remote(*payload)

    def _receive(self, i: int) -> Any:
        """The reply; a dead actor raises :class:`WorkerError`, an exception in an actor is
        re-raised as Ray raises it (an instance of the original exception's type)."""
        ref, self._pending[i] = self._pending[i], None
        try:
            return self._ray.get(ref)
        except self._ray.exceptions.RayActorError as err:
            raise WorkerError(f"Ray sampler actor {i} died: {err}") from None

    def _restart(self, i: int) -> None:
        with contextlib.suppress(Exception):
            self._ray.kill(self._actors[i])
        self._actors[i] = self._actor_class.remote(*self._args)
        self._ask(i, "ready", ())

    def close(self) -> None:
        for actor in self._actors:
            with contextlib.suppress(Exception):
                self._ray.kill(actor)
        self._actors = []
