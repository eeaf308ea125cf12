"""The algorithm registry: names (``algorithm: maml_trpo`` in a config file or a checkpoint)
to meta-learner classes, like :mod:`metarl.registry` for task families.

- :func:`register_algorithm` adds a :class:`~metarl.MetaLearner` subclass (or a lazy
  ``"module:Class"`` string, imported when the name is first used) under the name its
  ``algorithm`` attribute gives. ``metarl train``, ``metarl evaluate``, ``metarl.load`` and the
  baselines' ``--like`` then take it like the bundled ones.
- :func:`learner_class` resolves a name, :func:`algorithm_names` lists them.
- Installed packages register learners without being imported first, through the entry-point
  group ``metarl.algorithms`` (name = algorithm, value = ``"module:Class"``), e.g. in their
  ``pyproject.toml``::

      [project.entry-points."metarl.algorithms"]
      my_learner = "my_package.learner:MyLearner"

The class carries what the rest of metarl needs: ``algorithm`` (the name), ``display_name``
(legends and tables, e.g. ``"MAML-TRPO"``) and ``config_class`` (a
:class:`~metarl.algos.base.LearnerConfig` subclass, the config file's fields).
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from typing import Any

from metarl.algos.base import LearnerConfig, MetaLearner
from metarl.plugins import (
    check_lazy_entry_point,
    declared_entry_points,
    did_you_mean,
    import_entry_point,
    same_entry_point,
)

#: The entry-point group installed packages declare their meta-learners in.
ALGORITHM_ENTRY_POINT_GROUP = "metarl.algorithms"

#: The learners shipped with metarl, registered (lazily: imported when first used) before the
#: registry is first read or changed.
BUNDLED_ALGORITHMS = {
    "maml_trpo": "metarl.algos.maml_trpo:MAMLTRPO",
    "promp": "metarl.algos.promp:ProMP",
    "reptile": "metarl.algos.reptile:Reptile",
    "rl2": "metarl.algos.rl2:RL2",
}

_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")


class UnknownAlgorithmError(ValueError):
    """No learner is registered under the requested name."""


@dataclass
class AlgorithmSpec:
    """What the registry knows of a learner before its class is imported."""

    name: str
    entry_point: type[MetaLearner] | str
    source: str = "register_algorithm"


_REGISTRY: dict[str, AlgorithmSpec] = {}
#: Whether the bundled learners and the entry-point group are in :data:`_REGISTRY`.
_LOADED = False


def _ensure_loaded() -> None:
    """Register the bundled learners and the entry-point group's, once, before the registry
    is first read or changed (``import metarl`` imports no learner, nor torch).

    A failure (an entry point claiming a registered name) is raised again on every later use.
    """
    global _LOADED
    if not _LOADED:
        register_bundled_algorithms()
        load_algorithm_entry_points()
        _LOADED = True


def _check_class(name: str, cls: Any) -> None:
    if not (inspect.isclass(cls) and issubclass(cls, MetaLearner)):
        raise TypeError(
            f"entry point for algorithm {name!r} must be a metarl.MetaLearner subclass or a "
            f"'module:Class' string, got {cls!r}"
        )
    if inspect.isabstract(cls):
        missing = sorted(getattr(cls, "__abstractmethods__", ()))
        raise TypeError(
            f"{cls.__qualname__} (algorithm {name!r}) does not implement {missing}; a "
            f"registered learner must implement every abstract method of MetaLearner"
        )
    if getattr(cls, "algorithm", None) != name:
        raise ValueError(
            f"{cls.__qualname__}.algorithm is {getattr(cls, 'algorithm', None)!r}, but it is "
            f"registered as {name!r}; the two must agree (checkpoints record the class's name)"
        )
    config_class = getattr(cls, "config_class", None)
    if not (inspect.isclass(config_class) and issubclass(config_class, LearnerConfig)):
        raise TypeError(
            f"{cls.__qualname__}.config_class must be a LearnerConfig subclass (the config "
            f"file's fields), got {config_class!r}"
        )


def register_algorithm(
    name: str, entry_point: type[MetaLearner] | str, *, override: bool = False
) -> None:
    """Register a meta-learner under ``name`` (lower case, digits and ``_``).

    Args:
        name: the name config files and checkpoints use; the class's ``algorithm``.
        entry_point: a :class:`~metarl.MetaLearner` subclass, or ``"module:Class"`` (lazy,
            checked when first used).
        override: replace an existing registration instead of raising.

    Raises:
        ValueError: malformed name or entry point, a class whose ``algorithm`` is another
            name, or ``name`` already registered without ``override=True``.
        TypeError: not a MetaLearner subclass, abstract, or without a LearnerConfig class.
    """
    _ensure_loaded()
    _register(name, entry_point, override=override, source="register_algorithm")


def _register(name: str, entry_point: Any, *, override: bool, source: str) -> None:
    if not isinstance(name, str) or not _NAME_PATTERN.match(name):
        raise ValueError(
            f"algorithm name must be lower case letters, digits and '_', starting with a "
            f"letter (as in 'maml_trpo'), got {name!r}"
        )
    if isinstance(entry_point, str):
        check_lazy_entry_point("algorithm", name, entry_point)
    else:
        _check_class(name, entry_point)
    if name in _REGISTRY and not override:
        raise ValueError(
            f"algorithm {name!r} is already registered (by {_REGISTRY[name].source}); pass "
            f"override=True to replace it, or choose another name"
        )
    _REGISTRY[name] = AlgorithmSpec(name, entry_point, source)


def unregister_algorithm(name: str) -> None:
    """Remove a learner from the registry."""
    algorithm_spec(name)
    del _REGISTRY[name]


def algorithm_names() -> list[str]:
    """The registered algorithm names, sorted."""
    _ensure_loaded()
    return sorted(_REGISTRY)


def algorithm_spec(name: str) -> AlgorithmSpec:
    """The registration of ``name`` (entry point, where it came from).

    Raises:
        UnknownAlgorithmError: no such name (the message names the closest ones).
    """
    _ensure_loaded()
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        pass
    names = algorithm_names()
    raise UnknownAlgorithmError(
        f"unknown algorithm {name!r}.{did_you_mean(name, names)} Registered: "
        f"{', '.join(names)} (a third-party learner registers with "
        f"metarl.register_algorithm or the {ALGORITHM_ENTRY_POINT_GROUP!r} entry-point group)"
    )


def learner_class(name: str) -> type[MetaLearner]:
    """The learner class registered as ``name``, imported if it was registered lazily."""
    spec = algorithm_spec(name)
    if isinstance(spec.entry_point, str):
        cls = import_entry_point("algorithm", name, spec.entry_point, spec.source)
        _check_class(name, cls)
        spec.entry_point = cls
    return spec.entry_point


def register_bundled_algorithms() -> None:
    """Register metarl's own learners (runs before the registry is first used)."""
    for name, entry_point in BUNDLED_ALGORITHMS.items():
        if name not in _REGISTRY:
            _register(name, entry_point, override=False, source="metarl (bundled)")


def load_algorithm_entry_points() -> None:
    """Register the learners installed packages declare in the ``metarl.algorithms``
    entry-point group. Runs before the registry is first used; imports none of their code.

    Raises:
        ValueError: an entry point claims a name already registered with another class.
    """
    for ep in declared_entry_points(ALGORITHM_ENTRY_POINT_GROUP):
        existing = _REGISTRY.get(ep.name)
        if existing is not None:
            if same_entry_point(existing.entry_point, ep.value):
                continue
            raise ValueError(
                f"{ep.distribution} declares algorithm {ep.name!r} -> {ep.value!r} in "
                f"entry-point group {ALGORITHM_ENTRY_POINT_GROUP!r}, but {ep.name!r} is "
                f"already registered by {existing.source}; the package must use another name"
            )
        _register(ep.name, ep.value, override=False, source=f"entry point of {ep.distribution}")
