"""What the two registries (task families, algorithms) share: lazy ``"module:Class"`` entry
points, the entry-point groups installed packages declare, and "did you mean" hints.

A registry keeps, per name, either the object itself or a lazy ``"module:attr"`` string that
is imported only when the name is first used, so ``import metarl`` imports no third-party code.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


def check_lazy_entry_point(kind: str, name: str, value: str) -> None:
    """Raise ValueError unless ``value`` looks like ``"module:attr"``; ``kind`` names what
    it registers (``"task family"``, ``"algorithm"``) in the message."""
    module, sep, attr = value.partition(":")
    if not (sep and module and attr):
        raise ValueError(f"entry point for {kind} {name!r} must be 'module:Class', got {value!r}")


def import_entry_point(kind: str, name: str, value: str, source: str) -> Any:
    """The object a ``"module:attr"`` entry point names (``attr`` may be dotted).

    Raises:
        ImportError: the module or attribute does not exist; the message says which
            registration (``source``) pointed there.
    """
    module_name, _, attr = value.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as err:
        raise ImportError(
            f"could not load {kind} {name!r} from {value!r} (registered by {source}): {err}"
        ) from err
    return obj


def same_entry_point(registered: Any, value: str) -> bool:
    """Whether a registered entry point (an object or a string) is the one ``value`` names."""
    if isinstance(registered, str):
        return registered == value
    qualname = getattr(registered, "__qualname__", None)
    return f"{getattr(registered, '__module__', '')}:{qualname}" == value


@dataclass(frozen=True)
class Declared:
    """One entry point an installed package declares: ``name = value`` in ``group``."""

    name: str
    value: str
    distribution: str


def declared_entry_points(group: str) -> list[Declared]:
    """The entry points installed packages declare in ``group`` (nothing is imported)."""
    found = []
    for ep in importlib.metadata.entry_points(group=group):
        dist = getattr(ep.dist, "name", None) or "an installed package"
        found.append(Declared(ep.name, ep.value, dist))
    return found


def did_you_mean(name: object, known: Iterable[str]) -> str:
    """`` Did you mean 'X' or 'Y'?`` for the known names closest to ``name`` (a case-only
    difference first), or ``""``."""
    known = sorted(known)
    text = str(name)
    close = difflib.get_close_matches(text, known, n=3, cutoff=0.5)
    lowered = {k.lower(): k for k in known}
    if text.lower() in lowered and lowered[text.lower()] not in close:
        close.insert(0, lowered[text.lower()])
    return f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
