"""A bounded ``repr`` for error messages: a value read from a file (a config, a task list, a
checkpoint's metadata) may be huge or nested thousands deep, and an error must still print
in bounded time and length."""

from __future__ import annotations

import reprlib
from typing import Any

_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother = 3, 80, 80
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 8


def shown(value: Any) -> str:
    """``repr(value)``, cut to an excerpt: at most 8 items per container, 3 levels deep,
    80 characters per string."""
    try:
        return _REPR.repr(value)
    except RecursionError:  # pragma: no cover - reprlib stops at maxlevel first
        return f"<a {type(value).__name__} nested too deeply to show>"
