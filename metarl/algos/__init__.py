"""Meta-learners (MAML-TRPO, Reptile), the maths they share, and the registry that names them
(:mod:`metarl.algos.registry`: ``register_algorithm`` adds a learner of your own).

``metarl.load(path)`` brings back a learner from a run directory (its latest checkpoint) or from
a checkpoint file. ``learner.train(n, callback=...)`` takes the callbacks of
:mod:`metarl.algos.callbacks` (early stopping) and :mod:`metarl.evaluation.callbacks` (held-out
evaluation during training).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from metarl.algos.base import LearnerConfig, MetaLearner, latest_checkpoint
from metarl.algos.callbacks import (
    Callback,
    CallbackList,
    StopTrainingOnReturn,
)
from metarl.algos.config import config_from_dict
from metarl.algos.maml_trpo import MAMLTRPO, MAMLTRPOConfig
from metarl.algos.registry import (
    ALGORITHM_ENTRY_POINT_GROUP,
    UnknownAlgorithmError,
    algorithm_names,
    algorithm_spec,
    learner_class,
    register_algorithm,
    unregister_algorithm,
)
from metarl.algos.reptile import Reptile, ReptileConfig
from metarl.checkpoint import CHECKPOINT_DIR_NAME, CheckpointError, load_checkpoint


def resolve_checkpoint(path: str | Path) -> tuple[Path, Path | None]:
    """``(checkpoint file, run directory or None)`` for a run directory or a checkpoint."""
    path = Path(path)
    if path.is_dir():
        found = latest_checkpoint(path)
        if found is None:
            raise FileNotFoundError(
                f"{path} holds no checkpoint (looked for {CHECKPOINT_DIR_NAME}/iter_*.safetensors)"
            )
        return found, path
    if not path.exists():
        raise FileNotFoundError(f"no run directory or checkpoint at {str(path)!r}")
    run_dir = path.parent.parent if path.parent.name == CHECKPOINT_DIR_NAME else None
    return path, run_dir


def load(path: str | Path, **config_overrides: object) -> MetaLearner:
    """The learner saved at ``path`` (a run directory: its latest checkpoint; or a checkpoint
    file), ready to continue training or to adapt. ``config_overrides`` change settings that
    do not affect the results (``num_workers``, ``backend``, ``address``,
    ``checkpoint_every``)."""
    checkpoint, run_dir = resolve_checkpoint(path)
    tensors, meta = load_checkpoint(checkpoint)
    try:
        cls = learner_class(str(meta.get("algorithm")))
    except UnknownAlgorithmError as err:
        raise UnknownAlgorithmError(f"{checkpoint} was written by {err}") from None
    values = {**meta["config"], **config_overrides}
    try:
        config = config_from_dict(cls.config_class, values, source=str(checkpoint))
    except (ValueError, TypeError) as err:
        raise CheckpointError(f"{checkpoint}: its config does not load: {err}") from None
    # The checkpoint holds the whole state: a warm start's file is not read again (or needed).
    learner = cls(dataclasses.replace(config, init_policy=None), run_dir=run_dir)
    learner.config = config
    learner.load_state(tensors, meta)
    return learner


__all__ = [
    "ALGORITHM_ENTRY_POINT_GROUP",
    "MAMLTRPO",
    "Callback",
    "CallbackList",
    "LearnerConfig",
    "MAMLTRPOConfig",
    "MetaLearner",
    "Reptile",
    "ReptileConfig",
    "StopTrainingOnReturn",
    "UnknownAlgorithmError",
    "algorithm_names",
    "algorithm_spec",
    "learner_class",
    "load",
    "register_algorithm",
    "resolve_checkpoint",
    "unregister_algorithm",
]
