"""Helpers shared by the bundled MuJoCo families (built on Gymnasium's v5 envs)."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.utils import EzPickle


def summed(terms: dict[str, float]) -> tuple[float, dict[str, float]]:
    """``(reward, terms)`` with the reward the exact float sum of the terms, in order."""
    terms = {k: float(v) for k, v in terms.items()}
    return float(sum(terms.values())), terms


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


def finite_float(name: str, value: Any) -> float:
    """``value`` as a float, or a ``ValueError`` naming the env argument."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not np.isfinite(out):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return out
