"""Distributions over a task parameter's values.

A task family describes each of its parameters with a distribution: the *training*
distribution its tasks are drawn from and, optionally, an *out-of-distribution* (OOD) one for
held-out evaluation. A distribution knows three things:

- ``sample(rng, shape)``: draw a value (NumPy array of ``shape``, or one choice);
- ``contains(value)``: whether a value lies in its support (used to validate tasks);
- ``describe()``: a short human-readable form, e.g. ``U(0, 2)`` or ``1.5^U(-3, 3)``.

Every draw uses the explicit ``numpy.random.Generator`` it is given: never global state.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Relative slack used when checking a value against a bound, so that a value drawn at (or
#: rounded onto) the bound is accepted.
_BOUND_TOL = 1e-9


def freeze(value: Any) -> Any:
    """Turn lists (and nested lists/arrays) into tuples so a value is hashable."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def _fmt(x: float) -> str:
    return f"{x:.4g}"


class Distribution(ABC):
    """Base class of a parameter distribution."""

    @abstractmethod
    def sample(self, rng: np.random.Generator, shape: tuple[int, ...]) -> Any:
        """Draw one value of the given shape."""

    @abstractmethod
    def contains(self, value: Any) -> bool:
        """Whether ``value`` lies in the support (numeric values arrive as float arrays)."""

    @abstractmethod
    def describe(self) -> str:
        """Short human-readable form."""

    def __str__(self) -> str:
        return self.describe()


def _within(arr: np.ndarray, low: float, high: float) -> bool:
    slack = _BOUND_TOL * max(1.0, abs(low), abs(high))
    return bool(np.all(arr >= low - slack) and np.all(arr <= high + slack))


@dataclass(frozen=True)
class Uniform(Distribution):
    """Each element independently uniform on ``[low, high]``."""

    low: float
    high: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low < self.high):
            raise ValueError(f"Uniform needs finite low < high, got {self.low}, {self.high}")

    def sample(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        return rng.uniform(self.low, self.high, size=shape)

    def contains(self, value: Any) -> bool:
        return _within(np.asarray(value, dtype=float), self.low, self.high)

    def describe(self) -> str:
        return f"U({_fmt(self.low)}, {_fmt(self.high)})"


@dataclass(frozen=True)
class LogUniform(Distribution):
    """Each element independently ``base ** U(low, high)``: a multiplicative scale.

    ``LogUniform(1.5, -3, 3)`` is the rand_param_envs convention for physical parameters:
    scales between ``1.5**-3 ≈ 0.30`` and ``1.5**3 = 3.375``, equally likely to shrink or grow.
    """

    base: float
    low: float
    high: float

    def __post_init__(self) -> None:
        if not self.base > 1.0:
            raise ValueError(f"LogUniform needs base > 1, got {self.base}")
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low < self.high):
            raise ValueError(
                f"LogUniform needs finite low < high exponents, got {self.low}, {self.high}"
            )

    @property
    def min_value(self) -> float:
        return self.base**self.low

    @property
    def max_value(self) -> float:
        return self.base**self.high

    def sample(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        return self.base ** rng.uniform(self.low, self.high, size=shape)

    def contains(self, value: Any) -> bool:
        return _within(np.asarray(value, dtype=float), self.min_value, self.max_value)

    def describe(self) -> str:
        return (
            f"{_fmt(self.base)}^U({_fmt(self.low)}, {_fmt(self.high)}) "
            f"in [{_fmt(self.min_value)}, {_fmt(self.max_value)}]"
        )


@dataclass(frozen=True)
class Disk(Distribution):
    """A 2-D point uniform (by area) in the disk of ``radius`` around ``center``."""

    radius: float
    center: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.radius) and self.radius > 0):
            raise ValueError(f"Disk needs a finite radius > 0, got {self.radius}")

    def sample(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        if tuple(shape) != (2,):
            raise ValueError(f"Disk draws 2-D points: the shape must be (2,), not {shape}")
        angle = rng.uniform(0.0, 2.0 * np.pi)
        r = self.radius * np.sqrt(rng.uniform(0.0, 1.0))
        return np.asarray(self.center) + r * np.array([np.cos(angle), np.sin(angle)])

    def contains(self, value: Any) -> bool:
        arr = np.asarray(value, dtype=float)
        if arr.shape != (2,):
            return False
        dist = float(np.linalg.norm(arr - np.asarray(self.center)))
        return dist <= self.radius * (1.0 + _BOUND_TOL)

    def describe(self) -> str:
        c = self.center
        where = "" if c == (0.0, 0.0) else f" around ({_fmt(c[0])}, {_fmt(c[1])})"
        return f"uniform in the disk of radius {_fmt(self.radius)}{where}"


@dataclass(frozen=True, init=False)
class Choice(Distribution):
    """Uniform over a finite set of values (numbers, or tuples such as a set of leg indices)."""

    values: tuple[Any, ...]

    def __init__(self, values: Sequence[Any]) -> None:
        frozen = tuple(freeze(v) for v in values)
        if not frozen:
            raise ValueError("Choice needs at least one value")
        if len(set(frozen)) != len(frozen):
            raise ValueError(f"Choice values must be distinct, got {frozen}")
        object.__setattr__(self, "values", frozen)

    def sample(self, rng: np.random.Generator, shape: tuple[int, ...] = ()) -> Any:
        return self.values[int(rng.integers(len(self.values)))]

    def contains(self, value: Any) -> bool:
        try:
            return freeze(value) in self.values
        except TypeError:  # unhashable leftovers such as dicts
            return False

    def describe(self) -> str:
        return "one of {" + ", ".join(_describe_choice(v) for v in self.values) + "}"


def _describe_choice(v: Any) -> str:
    if isinstance(v, tuple):
        return "(" + ", ".join(str(x) for x in v) + ")" if len(v) != 1 else f"({v[0]},)"
    return str(v)
