"""The task-family registry: ids to families, like Gymnasium's registry for envs.

- :func:`register_family` adds a family under an id such as ``HalfCheetahVel-v0``; the entry
  point is a :class:`~metarl.TaskFamily` subclass or a lazy ``"module:Class"`` string,
  imported only when the family is first made. Keyword defaults are passed to its constructor.
- :func:`make_family` builds a family, :func:`family_ids` lists the ids.
- Each family's env is also registered with Gymnasium as ``metarl/<id>``, taking the task's
  parameters as keywords: ``gymnasium.make("metarl/HalfCheetahVel-v0", velocity=1.5)``.
- Third-party packages register families without being imported first, through the
  entry-point group ``metarl.families`` (name = family id, value = ``"module:Class"``), e.g.
  in their ``pyproject.toml``::

      [project.entry-points."metarl.families"]
      MyRobotMass-v0 = "my_package.families:MyRobotMassFamily"
"""

from __future__ import annotations

import functools
import inspect
import re
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym

from metarl.family import TaskFamily
from metarl.plugins import (
    check_lazy_entry_point,
    declared_entry_points,
    did_you_mean,
    import_entry_point,
    same_entry_point,
)

#: The entry-point group installed packages declare their families in.
FAMILY_ENTRY_POINT_GROUP = "metarl.families"
GYM_NAMESPACE = "metarl"
_ID_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_.]*-v\d+$")


class UnknownFamilyError(KeyError):
    """No family is registered under the requested id (a ``KeyError`` with a readable text)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


@dataclass
class FamilySpec:
    """What the registry knows of a family before it is built."""

    id: str
    entry_point: type[TaskFamily] | str
    defaults: dict[str, Any] = field(default_factory=dict)
    source: str = "register_family"

    @property
    def gym_id(self) -> str:
        return f"{GYM_NAMESPACE}/{self.id}"


_REGISTRY: dict[str, FamilySpec] = {}
#: Whether the bundled families and the entry-point group are in :data:`_REGISTRY`.
_LOADED = False


def _ensure_loaded() -> None:
    """Register the bundled families and the entry-point group's, once, before the registry
    is first read or changed (``import metarl`` does it first, for Gymnasium's ids).

    A failure (an entry point claiming a registered id) is raised again on every later use.
    """
    global _LOADED
    if not _LOADED:
        register_bundled_families()
        load_family_entry_points()
        _LOADED = True


def _check_entry_point(family_id: str, entry_point: Any) -> None:
    if isinstance(entry_point, str):
        check_lazy_entry_point("task family", family_id, entry_point)
        return
    if not (inspect.isclass(entry_point) and issubclass(entry_point, TaskFamily)):
        raise TypeError(
            f"entry point for {family_id!r} must be a metarl.TaskFamily subclass or a "
            f"'module:Class' string, got {entry_point!r}"
        )


def register_family(
    id: str,
    entry_point: type[TaskFamily] | str,
    *,
    override: bool = False,
    **defaults: Any,
) -> None:
    """Register a task family under ``id`` (format ``Name-vN``).

    Args:
        id: the family id, e.g. ``"MyRobotMass-v0"``.
        entry_point: a :class:`~metarl.TaskFamily` subclass, or ``"module:Class"`` (lazy).
        override: replace an existing registration instead of raising.
        **defaults: keyword arguments passed to the family's constructor.

    Raises:
        ValueError: malformed id or entry point, or ``id`` already registered without
            ``override=True``.
    """
    _ensure_loaded()
    _register(id, entry_point, override=override, defaults=defaults, source="register_family")


def _register(
    id: str, entry_point: Any, *, override: bool, defaults: dict[str, Any], source: str
) -> None:
    if not isinstance(id, str) or not _ID_PATTERN.match(id):
        raise ValueError(
            f"family id must look like 'Name-v0' (letters, digits, '_', '.', then -v<N>), "
            f"got {id!r}"
        )
    _check_entry_point(id, entry_point)
    if id in _REGISTRY and not override:
        raise ValueError(
            f"task family {id!r} is already registered (by {_REGISTRY[id].source}); "
            f"pass override=True to replace it, or choose another id or version"
        )
    spec = FamilySpec(id, entry_point, dict(defaults), source)
    _REGISTRY[id] = spec
    gym.registry.pop(spec.gym_id, None)  # re-registration replaces quietly
    gym.register(id=spec.gym_id, entry_point=functools.partial(_make_gym_env, id))


def unregister_family(id: str) -> None:
    """Remove a family (and its Gymnasium env) from the registry."""
    spec = _get_spec(id)
    del _REGISTRY[id]
    gym.registry.pop(spec.gym_id, None)


def family_ids() -> list[str]:
    """The registered family ids, sorted."""
    _ensure_loaded()
    return sorted(_REGISTRY)


def _get_spec(id: str) -> FamilySpec:
    _ensure_loaded()
    try:
        return _REGISTRY[id]
    except (KeyError, TypeError):
        pass
    ids = family_ids()
    raise UnknownFamilyError(
        f"no task family is registered as {id!r}.{did_you_mean(id, ids)} "
        f"Registered: {', '.join(ids)}"
    )


def family_spec(id: str) -> FamilySpec:
    """The registration of ``id`` (entry point, defaults, where it came from)."""
    return _get_spec(id)


def _resolve(spec: FamilySpec) -> type[TaskFamily]:
    if not isinstance(spec.entry_point, str):
        return spec.entry_point
    obj = import_entry_point("task family", spec.id, spec.entry_point, spec.source)
    _check_entry_point(spec.id, obj)
    spec.entry_point = obj
    return obj


def make_family(id: str, **overrides: Any) -> TaskFamily:
    """Build the family registered as ``id``; ``overrides`` update its registered defaults.

    Raises:
        UnknownFamilyError: no such id (the message names the closest ids).
        ValueError: a keyword the family does not take (the message lists those it does).
    """
    spec = _get_spec(id)
    cls = _resolve(spec)
    kwargs = {**spec.defaults, **overrides}
    signature = inspect.signature(cls)
    try:
        signature.bind(**kwargs)
    except TypeError:
        allowed = [
            name
            for name, p in signature.parameters.items()
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        unknown = sorted(set(kwargs) - set(allowed))
        raise ValueError(
            f"{id} does not take {unknown or list(kwargs)}; its keyword arguments are "
            f"{allowed or 'none'}"
        ) from None
    family = cls(**kwargs)
    family.id = id
    return family


def _make_gym_env(family_id: str, **kwargs: Any) -> gym.Env:
    """Gymnasium entry point: task parameters from ``kwargs``, the rest go to the env."""
    family = make_family(family_id)
    names = {p.name for p in family.parameters}
    task = family.make_task(**{k: v for k, v in kwargs.items() if k in names})
    return family.make_env(task, **{k: v for k, v in kwargs.items() if k not in names})


def register_bundled_families() -> None:
    """Register the families shipped in ``metarl_envs`` (lazily: a family's module is imported
    when it is first made). Runs before the registry is first used."""
    from metarl_envs import BUNDLED_FAMILIES

    for family_id, entry_point in BUNDLED_FAMILIES.items():
        if family_id not in _REGISTRY:
            _register(
                family_id, entry_point, override=False, defaults={}, source="metarl (bundled)"
            )


def load_family_entry_points() -> None:
    """Register the families that installed packages declare in the ``metarl.families``
    entry-point group. Runs before the registry is first used; imports none of their code.

    Raises:
        ValueError: an entry point claims an id already registered with another entry point.
    """
    for ep in declared_entry_points(FAMILY_ENTRY_POINT_GROUP):
        existing = _REGISTRY.get(ep.name)
        if existing is not None:
            if same_entry_point(existing.entry_point, ep.value):
                continue
            raise ValueError(
                f"{ep.distribution} declares task family {ep.name!r} -> {ep.value!r} in "
                f"entry-point group {FAMILY_ENTRY_POINT_GROUP!r}, but {ep.name!r} is already "
                f"registered by {existing.source}; the package must use another id or version"
            )
        _register(
            ep.name,
            ep.value,
            override=False,
            defaults={},
            source=f"entry point of {ep.distribution}",
        )
