"""Starting and resuming training runs, as ``metarl train`` does.

A run lives in a directory: ``config.yaml``, ``progress.csv``, ``tb/`` (TensorBoard) and
``checkpoints/``. Starting a run in a directory that already holds checkpoints is refused (it
would mix two runs); ``resume=True`` continues the latest checkpoint instead, and refuses if
there is none or if its settings differ from the config given: it never silently starts over.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from metarl.algos import learner_class, load
from metarl.algos.base import MetaLearner, latest_checkpoint
from metarl.algos.config import config_from_dict, config_to_dict, read_config_file

#: ``metarl train`` with no config: MAML-TRPO on 2-D navigation, a few minutes on 2 cores.
DEFAULT_CONFIG: dict[str, Any] = {
    "algorithm": "maml_trpo",
    "family": "Navigation2D-v0",
    "meta_batch_size": 20,
    "fast_batch_size": 20,
    "iterations": 30,
    "checkpoint_every": 10,
}

#: Settings that may differ when resuming: they do not change the results.
_FREE_ON_RESUME = ("num_workers", "checkpoint_every", "backend", "address")


def start_run(
    config_path: str | Path | None = None,
    run_dir: str | Path | None = None,
    seed: int | None = None,
    resume: bool = False,
    overrides: Mapping[str, Any] | None = None,
) -> MetaLearner:
    """The learner for a new run, or the resumed learner of an existing one. ``overrides``
    change fields of the config file (``metarl train CONFIG --set inner_lr=0.01``); the run's
    ``config.yaml`` records the result."""
    if config_path is None:
        values = dict(DEFAULT_CONFIG)
        algorithm, source = values.pop("algorithm"), "the built-in default config"
    else:
        algorithm, values = read_config_file(config_path)
        source = str(config_path)
    if overrides:
        if "algorithm" in overrides:
            raise ValueError("--set cannot change the algorithm; use another config file")
        values.update(overrides)
        source += " with " + ", ".join(f"{k}={v!r}" for k, v in overrides.items())
    if seed is not None:
        values["seed"] = seed
    cls = learner_class(algorithm)
    config = config_from_dict(cls.config_class, values, source)
    if run_dir is None:
        run_dir = Path("runs") / f"{algorithm}-{config.family}-seed{config.seed}"
    run_dir = Path(run_dir)
    checkpoint = latest_checkpoint(run_dir)
    if not resume:
        if checkpoint is not None:
            raise ValueError(
                f"{run_dir} already holds a run (latest checkpoint {checkpoint.name}); continue "
                f"it with --resume, or choose another --run-dir"
            )
        return cls(config, run_dir=run_dir)
    if checkpoint is None:
        raise FileNotFoundError(f"--resume: {run_dir} holds no checkpoint to resume from")
    # A resumed run takes these from the config it is resumed with. ``iterations`` is not among
    # them: it is the run's schedule (Reptile anneals its meta step size over it), and
    # ``--iterations N`` trains past it.
    learner = load(run_dir, **{name: getattr(config, name) for name in _FREE_ON_RESUME})
    saved, given = config_to_dict(learner.config), config_to_dict(config)
    differ = sorted(k for k in given if k not in _FREE_ON_RESUME and saved[k] != given[k])
    if learner.algorithm != algorithm or differ:
        learner.close()
        details = ", ".join(f"{k}: saved {saved[k]!r}, given {given[k]!r}" for k in differ)
        raise ValueError(
            f"--resume: the run in {run_dir} was trained with other settings "
            f"({details or f'algorithm {learner.algorithm!r}'}); resume it with its own config"
            + (
                "; to train past its iterations, pass --iterations N"
                if "iterations" in differ
                else ""
            )
        )
    return learner
