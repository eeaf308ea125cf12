"""Learner configs: documented dataclasses, filled from YAML files with every key checked.

A config file names the ``algorithm`` (``maml_trpo``), then any field of that algorithm's
config dataclass by its own name; omitted fields keep their defaults (the paper's)::

    algorithm: maml_trpo
    family: HalfCheetahDir-v0
    meta_batch_size: 40
    inner_lr: 0.1

An unknown key, or a value of the wrong type, raises a ``ValueError`` naming the key.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

#: Fields that had another name before every algorithm used one name per idea (MAML-TRPO's
#: ``fast_lr`` and ``num_inner_steps``, Reptile's ``inner_lr`` and ``inner_steps``): only the
#: error for an old config file uses it.
RENAMED = {"fast_lr": "inner_lr", "num_inner_steps": "inner_steps"}


def _check_value(name: str, value: Any, hint: Any, source: str) -> Any:
    """``value`` converted to the field's type, or a ValueError naming the field."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (hint,) = [a for a in args if a is not type(None)]
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is bool:
        ok = isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif hint is str:
        ok = isinstance(value, str)
    elif origin is tuple:
        ok = isinstance(value, (list, tuple)) and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        )
        value = tuple(value) if ok else value
    else:  # pragma: no cover - a field type this loader does not know
        raise TypeError(f"config field {name!r} has an unsupported type {hint!r}")
    if not ok:
        raise ValueError(
            f"{source}: {name!r} must be {getattr(hint, '__name__', hint)}, got {value!r}"
        )
    return value


def config_from_dict(cls: type, values: Mapping[str, Any], source: str = "config") -> Any:
    """Build config dataclass ``cls`` from ``values``, checking every key and type."""
    if not isinstance(values, Mapping):
        raise ValueError(f"{source}: expected a mapping of config keys, got {values!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in values.items():
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            if key in RENAMED and RENAMED[key] in names:
                hint = f"; it is called {RENAMED[key]!r} now (one name across algorithms)"
            raise ValueError(
                f"{source}: unknown key {key!r} for {cls.__name__}{hint} (known: {names})"
            )
        kwargs[key] = _check_value(key, value, hints[key], source)
    return cls(**kwargs)


def config_to_dict(config: Any) -> dict[str, Any]:
    """The config as plain JSON/YAML values (tuples become lists)."""
    return {
        k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()
    }


def read_config_file(path: str | Path) -> tuple[str, dict[str, Any]]:
    """``(algorithm, fields)`` of a YAML config file; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {str(path)!r} does not exist")
    try:
        values = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(values, dict):
        raise ValueError(f"{path}: expected a mapping of config keys, got {values!r}")
    values = dict(values)
    algorithm = values.pop("algorithm", None)
    if not isinstance(algorithm, str):
        raise ValueError(f"{path}: name the algorithm, e.g. 'algorithm: maml_trpo'")
    return algorithm, values
