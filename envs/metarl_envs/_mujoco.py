"""Helpers shared by the bundled families (most built on Gymnasium's v5 MuJoCo envs)."""

from __future__ import annotations

import copy
from typing import Any, ClassVar

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium.utils import EzPickle

from metarl.family import TaskFamily
from metarl.mujoco.messages import compile_model
from metarl.task import Task

#: Compiled models by XML path, for :class:`CachedModel`.
_COMPILED: dict[str, mujoco.MjModel] = {}


def summed(terms: dict[str, float]) -> tuple[float, dict[str, float]]:
    """``(reward, terms)`` with the reward the exact float sum of the terms, in order."""
    terms = {k: float(v) for k, v in terms.items()}
    return float(sum(terms.values())), terms


class CachedModel:
    """Mixin for a Gymnasium ``MujocoEnv``: compile each XML file once per process and give
    every env its own copy of the compiled model.

    Copying takes about a tenth of the compile time (the sampler builds hundreds of envs), and
    MuJoCo's compiler warnings print once per process instead of once per env (the
    deprecated ``settotalmass`` of Gymnasium's ``half_cheetah.xml`` is applied without one:
    :func:`metarl.mujoco.messages.compile_model`). Each env owns its copy, so changing one
    env's model (RandParams) leaves the others alone.
    """

    def _initialize_simulation(self) -> tuple[mujoco.MjModel, mujoco.MjData]:
        path = self.fullpath  # type: ignore[attr-defined]
        if path not in _COMPILED:
            _COMPILED[path] = compile_model(path)
        model = copy.copy(_COMPILED[path])
        # As Gymnasium does: only grow the offscreen framebuffer to the requested size.
        model.vis.global_.offwidth = max(model.vis.global_.offwidth, self.width)  # type: ignore[attr-defined]
        model.vis.global_.offheight = max(model.vis.global_.offheight, self.height)  # type: ignore[attr-defined]
        return model, mujoco.MjData(model)


class SummedReward:
    """Mixin for a Gymnasium v5 env: keep its reward terms, and make the reward their exact
    sum (Gymnasium groups them differently, e.g. ``(fwd + healthy) - (ctrl + contact)``,
    which can differ from the sum of the reported terms in the last bit)."""

    def _get_rew(self, *args: Any) -> tuple[float, dict[str, float]]:
        _, terms = super()._get_rew(*args)  # type: ignore[misc]
        return summed(terms)


def record_init_args(env: Any, **kwargs: Any) -> None:
    """Make pickling and ``copy.deepcopy`` rebuild ``env`` from these constructor keywords.

    Gymnasium's v5 envs record their own constructor arguments for pickling (``EzPickle``);
    a subclass with task parameters must record its own, or a copy would come back with
    another task (or fail to build). Call at the end of the subclass's ``__init__``.
    """
    EzPickle.__init__(env, **kwargs)


def update_init_args(env: Any, **kwargs: Any) -> None:
    """After ``set_task``: make pickling and copies rebuild the env with its new task."""
    recorded = getattr(env, "_ezpickle_kwargs", None)
    if recorded is not None:
        recorded.update(kwargs)


def finite_float(name: str, value: Any) -> float:
    """``value`` as a float, or a ``ValueError`` naming the env argument."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not np.isfinite(out):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return out


def goal_array(goal: Any) -> np.ndarray:
    """``goal`` as a float array of 2 finite numbers, or a ``ValueError``."""
    out = np.asarray(goal, dtype=np.float64)
    if out.shape != (2,) or not np.all(np.isfinite(out)):
        raise ValueError(f"goal must be 2 finite numbers, got {goal!r}")
    return out


class FrameSkip(TaskFamily):
    """Builds its envs with :attr:`frame_skip` physics steps per action (unless the caller
    passes its own ``frame_skip``)."""

    #: Physics steps per action; ``None`` keeps the env's own default (Gymnasium's 5).
    frame_skip: ClassVar[int | None] = None

    def create_env(self, task: Task, **env_kwargs: Any) -> gym.Env:
        if self.frame_skip is not None:
            env_kwargs.setdefault("frame_skip", self.frame_skip)
        return super().create_env(task, **env_kwargs)
