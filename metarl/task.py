"""Tasks and the parameters that define them.

A :class:`Task` is a small frozen record: the id of its family and the value of each of the
family's parameters. It is hashable (tasks can key dicts and sets) and JSON-serialisable
(``task.to_dict()`` gives plain numbers and lists; ``family.task_from_dict`` validates and
rebuilds it). A :class:`Parameter` says what one value means, its shape, its training
distribution, its optional out-of-distribution range and its default.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from metarl.distributions import Choice, Distribution, freeze
from metarl.excerpt import shown


@dataclass(frozen=True)
class Parameter:
    """One parameter of a task family.

    Args:
        name: keyword the env constructor takes (``velocity``, ``body_mass_scale`` ...).
        description: what the value means, in a few words, for listings and errors.
        distribution: the training distribution tasks are drawn from.
        default: value used when a task is built without this parameter (e.g. by
            ``gymnasium.make`` with no keyword); must lie in the allowed range.
        ood: optional out-of-distribution distribution for held-out evaluation. A task is
            valid if each value lies in the training *or* the OOD support.
        shape: shape of a numeric value; ``()`` for a scalar. Ignored for ``Choice``.
    """

    name: str
    description: str
    distribution: Distribution
    default: Any
    ood: Distribution | None = None
    shape: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ValueError(f"parameter name must be a Python identifier, got {self.name!r}")
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        try:
            default = self.validate(self.default)
        except ValueError as err:
            raise ValueError(f"invalid default for parameter {self.name!r}: {err}") from None
        object.__setattr__(self, "default", default)

    @property
    def is_choice(self) -> bool:
        return isinstance(self.distribution, Choice)

    def allowed(self) -> str:
        """Human-readable statement of the allowed values."""
        shape = "" if self.is_choice or not self.shape else f" with shape {self.shape}"
        text = f"{self.distribution.describe()}{shape}"
        if self.ood is not None:
            text += f", or out-of-distribution {self.ood.describe()}"
        return text

    def summary(self) -> str:
        """One compact phrase: name, shape and ranges, e.g. ``mass_scale[7] 1.5^U(-3, 3)``."""
        shape = (
            "" if self.is_choice or not self.shape else "[" + "x".join(map(str, self.shape)) + "]"
        )
        ood = f" (ood {self.ood.describe()})" if self.ood is not None else ""
        return f"{self.name}{shape} {self.distribution.describe()}{ood}"

    def sample(self, rng: np.random.Generator, ood: bool = False) -> Any:
        """Draw a canonical value from the training (or, with ``ood``, the OOD) distribution."""
        dist = self.ood if ood and self.ood is not None else self.distribution
        return self._canonical(dist.sample(rng, self.shape))

    def validate(self, value: Any) -> Any:
        """Check ``value`` and return its canonical (hashable, JSON-friendly) form.

        Raises:
            ValueError: wrong type or shape, non-finite, or outside the allowed range; the
                message names the parameter and says what is allowed.
        """
        supports = [d for d in (self.distribution, self.ood) if d is not None]
        if self.is_choice:
            bool_choices = any(isinstance(v, bool) for d in supports for v in d.values)
            if isinstance(value, (bool, np.bool_)) and not bool_choices:
                raise ValueError(f"{self.name} must be {self.allowed()}, got the bool {value!r}")
            if not any(d.contains(value) for d in supports):
                raise ValueError(
                    f"{self.name}={shown(value)} is not allowed: expected {self.allowed()}"
                )
            return freeze(value)
        if isinstance(value, (bool, np.bool_, str, bytes)) or value is None:
            raise ValueError(
                f"{self.name} must be numeric ({self.allowed()}), got {type(value).__name__}"
            )
        try:
            arr = np.asarray(value)
        except (TypeError, ValueError, RecursionError):
            arr = np.asarray(None, dtype=object)  # ragged or too deep: not numeric
        if arr.dtype.kind not in "iuf":  # strings, bools, None or anything else in a list
            raise ValueError(
                f"{self.name} must be numeric with shape {self.shape} (numbers, not strings "
                f"or bools), got {shown(value)}"
            )
        arr = arr.astype(float)
        if arr.shape != self.shape:
            raise ValueError(f"{self.name} must have shape {self.shape}, got shape {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{self.name} must be finite, got {_short(arr)}")
        if not any(d.contains(arr) for d in supports):
            raise ValueError(
                f"{self.name}={_short(arr)} is out of range: expected {self.allowed()}"
            )
        return self._canonical(arr)

    def _canonical(self, value: Any) -> Any:
        if self.is_choice:
            return freeze(value)
        arr = np.asarray(value, dtype=float)
        return float(arr) if arr.ndim == 0 else freeze(arr)


def _short(arr: np.ndarray) -> str:
    if arr.ndim == 0:
        return repr(float(arr))
    flat = arr.ravel()
    lo, hi = float(flat.min()), float(flat.max())
    return f"array with values in [{lo:.4g}, {hi:.4g}]"


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


class Task(Mapping[str, Any]):
    """A frozen, hashable record of one task: its family's id and its parameter values.

    Read values as ``task["velocity"]`` or ``task.velocity``; ``dict(task)`` and
    ``task.to_dict()`` give the parameters (``to_dict`` with lists instead of tuples, ready
    for ``json.dumps`` or ``gymnasium.make(..., **task.to_dict())``). Build tasks through their
    family (``family.make_task``, ``family.task_from_dict``, ``family.sample_tasks``), which
    validates the values.
    """

    __slots__ = ("_family", "_hash", "_params")

    def __init__(self, family: str, params: Mapping[str, Any]) -> None:
        items = tuple(sorted((str(k), freeze(v)) for k, v in params.items()))
        object.__setattr__(self, "_family", str(family))
        object.__setattr__(self, "_params", items)
        object.__setattr__(self, "_hash", hash((self._family, items)))

    @property
    def family(self) -> str:
        """Id of the family this task belongs to."""
        return self._family

    def to_dict(self) -> dict[str, Any]:
        """The parameters as plain JSON types (floats, ints, nested lists)."""
        return {k: _jsonable(v) for k, v in self._params}

    def __getitem__(self, key: str) -> Any:
        for k, v in self._params:
            if k == key:
                return v
        raise KeyError(f"task of {self._family} has no parameter {key!r}; it has {list(self)}")

    def __getattr__(self, key: str) -> Any:
        if key.startswith("_"):
            raise AttributeError(key)
        try:
            return self[key]
        except KeyError as err:
            raise AttributeError(str(err)) from None

    def __iter__(self) -> Iterator[str]:
        return (k for k, _ in self._params)

    def __len__(self) -> int:
        return len(self._params)

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError("Task is immutable; build a new one with family.make_task(...)")

    def __delattr__(self, key: str) -> None:
        raise AttributeError("Task is immutable")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Task):
            return NotImplemented
        return self._family == other._family and self._params == other._params

    def __hash__(self) -> int:
        return self._hash

    def __reduce__(self) -> tuple[Any, ...]:
        return (Task, (self._family, dict(self._params)))

    def __repr__(self) -> str:
        parts = ", ".join(f"{k}={_repr_value(v)}" for k, v in self._params)
        return f"Task({self._family!r}, {parts})"


def _repr_value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}" if math.isfinite(v) else repr(v)
    if isinstance(v, tuple) and v and isinstance(v[0], (tuple, float)):
        flat = np.asarray(v, dtype=float).ravel()
        if flat.size > 4:
            return f"<{flat.size} values in [{flat.min():.3g}, {flat.max():.3g}]>"
    return repr(v)
