"""Checkpoints: tensors in safetensors, everything else as JSON in its header; never pickle.

A checkpoint is one ``.safetensors`` file. Its tensors are the learner's parameters (and any
other tensor state); its metadata holds, under the key ``metarl``, a JSON document with the
format tag, the algorithm, the config and every other piece of state (iteration, RNG states,
the sampler's position in its seed stream). Loading reads tensors and JSON only, so a
checkpoint can never run code.

Where a run keeps its checkpoints, and what a learner's holds, is :mod:`metarl.runs`'s; this
module is the file format.

Writing is atomic: the file is written beside its destination under a temporary name,
flushed to disk, then renamed over it, so a kill mid-write leaves the previous checkpoint as it
was.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from metarl.atomic import atomic_path

FORMAT = "metarl-checkpoint"
VERSION = 1
SUFFIX = ".safetensors"


class CheckpointError(ValueError):
    """A file that is not a readable metarl checkpoint (corrupt, truncated or foreign)."""


def save_checkpoint(path: str | Path, tensors: dict[str, torch.Tensor], meta: dict) -> Path:
    """Write ``tensors`` and the JSON-able ``meta`` to ``path`` atomically."""
    document = json.dumps({"format": FORMAT, "version": VERSION, **meta})
    contiguous = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(contiguous, str(tmp), metadata={"metarl": document})
    return Path(path)


def load_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``(tensors, meta)`` of a checkpoint written by :func:`save_checkpoint`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    try:
        with safe_open(str(path), framework="pt") as handle:
            header = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(
            f"{path} is not a readable checkpoint (corrupt or truncated?): {err}"
        ) from None
    try:
        meta = json.loads(header["metarl"])
    except (KeyError, json.JSONDecodeError):
        raise CheckpointError(f"{path} is a safetensors file but not a metarl checkpoint") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a metarl checkpoint (format {meta.get('format')!r})")
    if meta.get("version") != VERSION:
        raise CheckpointError(
            f"{path} is a version {meta.get('version')} checkpoint; this metarl reads version "
            f"{VERSION}"
        )
    return tensors, meta


def section(tensors: dict[str, torch.Tensor], name: str) -> dict[str, torch.Tensor]:
    """The tensors a checkpoint keeps under ``name/`` (``policy``, ``optimizer``, ...), with
    that prefix removed."""
    prefix = f"{name}/"
    return {k.removeprefix(prefix): v for k, v in tensors.items() if k.startswith(prefix)}


def optimizer_state(
    optimizer: torch.optim.Optimizer,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """A torch optimiser's state as ``(tensors, json)`` for a checkpoint: its per-parameter
    tensors (Adam's moments, and step counts kept as tensors) under ``<index>/<key>``, the
    rest (plain numbers, the parameter groups) as JSON. :func:`load_optimizer_state` is the
    inverse."""
    state = optimizer.state_dict()
    tensors, values = {}, {}
    for index, slots in state["state"].items():
        for key, value in slots.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{index}/{key}"] = value
            else:
                values[f"{index}/{key}"] = value
    return tensors, {"values": values, "groups": state["param_groups"]}


def load_optimizer_state(
    optimizer: torch.optim.Optimizer,
    tensors: dict[str, torch.Tensor],
    document: dict[str, Any],
) -> None:
    """Restore what :func:`optimizer_state` gave into ``optimizer`` (built for the same
    parameters)."""
    slots: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        index, key = name.split("/", 1)
        slots.setdefault(int(index), {})[key] = value
    for name, value in document.get("values", {}).items():
        index, key = name.split("/", 1)
        slots.setdefault(int(index), {})[key] = value
    optimizer.load_state_dict({"state": slots, "param_groups": document["groups"]})


def outer_optimizer_state(
    optimizer: torch.optim.Optimizer,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """:func:`optimizer_state` as a learner's extra checkpoint state: the tensors under
    ``outer/``, the rest under the JSON keys ``outer_values`` and ``outer_groups`` (the
    layout of Reptile's, ProMP's and RL²'s checkpoints). :func:`load_outer_optimizer_state`
    is the inverse."""
    tensors, document = optimizer_state(optimizer)
    return {f"outer/{k}": v for k, v in tensors.items()}, {
        "outer_values": document["values"],
        "outer_groups": document["groups"],
    }


def load_outer_optimizer_state(
    optimizer: torch.optim.Optimizer,
    tensors: Mapping[str, torch.Tensor],
    state: Mapping[str, Any],
) -> None:
    """Restore what :func:`outer_optimizer_state` gave into ``optimizer``."""
    outer = {k.removeprefix("outer/"): v for k, v in tensors.items() if k.startswith("outer/")}
    document = {"values": state.get("outer_values", {}), "groups": state["outer_groups"]}
    load_optimizer_state(optimizer, outer, document)
