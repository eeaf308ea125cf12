"""Learner configs: documented dataclasses, filled from YAML files with every key checked.

A config file names the ``algorithm`` (``maml_trpo``), then any field of that algorithm's
config dataclass by its own name; omitted fields keep their defaults (the paper's)::

    algorithm: maml_trpo
    family: HalfCheetahDir-v0
    meta_batch_size: 40
    inner_lr: 0.1

An unknown key, a value of the wrong type, or a number that is not finite raises a
``ValueError`` naming the key; each algorithm's config checks its fields' ranges. A config
file is small: larger than :data:`MAX_CONFIG_BYTES`, or with YAML aliases (which let a few
hundred bytes expand to gigabytes), it is refused, and an error shows a bounded excerpt of
the value it names (:func:`shown`).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from metarl.excerpt import shown

#: Fields that had another name before every algorithm used one name per idea (MAML-TRPO's
#: ``fast_lr`` and ``num_inner_steps``, Reptile's ``inner_lr`` and ``inner_steps``): only the
#: error for an old config file uses it.
RENAMED = {"fast_lr": "inner_lr", "num_inner_steps": "inner_steps"}

#: The largest config file read (a config is a few hundred bytes).
MAX_CONFIG_BYTES = 64 * 1024
#: Integers a config field takes lie in ``[-MAX_INT, MAX_INT)`` (torch and NumPy seeds are
#: 64-bit; nothing else comes near).
MAX_INT = 2**63


class _NoAliasLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing aliases: a config needs none, and nested aliases expand a
    few hundred bytes into billions of values ("billion laughs")."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None,
                None,
                f"found the alias *{event.anchor}; a config takes no YAML aliases (write "
                f"the value out)",
                event.start_mark,
            )
        return super().compose_node(parent, index)


def load_yaml(text: str, source: str) -> Any:
    """The value of the YAML ``text`` (safe: plain data only, no aliases, at most
    :data:`MAX_CONFIG_BYTES`); a ValueError naming ``source`` otherwise."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_CONFIG_BYTES:
        raise ValueError(
            f"{source}: {len(text.encode('utf-8', 'surrogatepass')):,} bytes is too large for "
            f"a config (at most {MAX_CONFIG_BYTES:,})"
        )
    try:
        return yaml.load(text, Loader=_NoAliasLoader)  # a SafeLoader: plain data only
    except yaml.YAMLError as err:
        raise ValueError(f"{source}: not valid YAML: {err}") from None
    except RecursionError:
        raise ValueError(f"{source}: nested too deeply to be a config") from None


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
        if ok and not -MAX_INT <= value < MAX_INT:
            raise ValueError(f"{source}: {name!r} must be an int below 2**63, got {shown(value)}")
    elif hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok:
            number = float(value) if abs(value) < 1e308 else math.inf  # huge ints: inf
            if not math.isfinite(number):
                raise ValueError(f"{source}: {name!r} must be a finite number, got {shown(value)}")
            value = number
    elif hint is str:
        ok = isinstance(value, str)
    elif origin is tuple:
        ok = isinstance(value, (list, tuple)) and all(
            isinstance(v, int) and not isinstance(v, bool) and -MAX_INT <= v < MAX_INT
            for v in value
        )
        value = tuple(value) if ok else value
    else:  # pragma: no cover - a field type this loader does not know
        raise TypeError(f"config field {name!r} has an unsupported type {hint!r}")
    if not ok:
        raise ValueError(
            f"{source}: {name!r} must be {getattr(hint, '__name__', hint)}, got {shown(value)}"
        )
    return value


def config_from_dict(cls: type, values: Mapping[str, Any], source: str = "config") -> Any:
    """Build config dataclass ``cls`` from ``values``, checking every key and type."""
    if not isinstance(values, Mapping):
        raise ValueError(f"{source}: expected a mapping of config keys, got {shown(values)}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in values.items():
        if key not in names:
            close = difflib.get_close_matches(shown(key), names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            if key in RENAMED and RENAMED[key] in names:
                hint = f"; it is called {RENAMED[key]!r} now (one name across algorithms)"
            raise ValueError(
                f"{source}: unknown key {shown(key)} for {cls.__name__}{hint} (known: {names})"
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
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise ValueError(
            f"{path}: {path.stat().st_size:,} bytes is too large for a config (at most "
            f"{MAX_CONFIG_BYTES:,})"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not a text (UTF-8) file: {err}") from None
    values = load_yaml(text, str(path))
    if not isinstance(values, dict):
        raise ValueError(f"{path}: expected a mapping of config keys, got {shown(values)}")
    values = dict(values)
    algorithm = values.pop("algorithm", None)
    if not isinstance(algorithm, str):
        raise ValueError(f"{path}: name the algorithm, e.g. 'algorithm: maml_trpo'")
    return algorithm, values
