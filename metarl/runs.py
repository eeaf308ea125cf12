"""Runs: what a training run keeps on disk, under which names, and how a run is started,
resumed and loaded.

A run directory holds::

    config.yaml                      the algorithm and its config, as the run started
    progress.csv                     one row of statistics per meta-iteration (RunLog)
    tb/                              the same statistics, for TensorBoard
    checkpoints/iter_NNNNNN.safetensors   every ``checkpoint_every`` iterations and at the end
    checkpoints/best.safetensors     the best held-out iteration so far (EvaluationCallback),
    checkpoints/best.json            with its iteration, score and report
    evaluation/<tasks>-iter<N>-seed<S>.json   held-out evaluation reports

These names are a file format: runs written by earlier versions (the checkpoints committed
under ``experiments/results/``) load unchanged.

What a learner's checkpoint holds (policy, the algorithm's extra state, iteration, env steps,
the sampler's position in its seed stream, the task RNG: everything a bit-exact resume needs)
is written by :func:`write_checkpoint` and read back by :func:`restore`; the file itself
(safetensors tensors + a JSON header, written atomically, never pickle) is
:mod:`metarl.checkpoint`'s.

:func:`load` (``metarl.load``) brings a learner back from a run directory or a checkpoint file,
building nothing heavy: the sampler's workers start when it first samples.
:func:`start_run` starts or resumes a run as ``metarl train`` does: starting in a directory
that holds checkpoints is refused (it would mix two runs), and resuming refuses a directory
with none or a config whose settings differ: a run never silently starts over.

Dependencies point one way: this module imports the learners (:mod:`metarl.algos`: the
registry, to load a checkpoint by its algorithm's name; the config parsing, to start a run)
and :mod:`metarl.evaluation.evaluate` (to name a report file); neither imports it when it is
imported (:mod:`metarl.evaluation.callbacks`, above both, does). :class:`~metarl.MetaLearner`
calls into it at run time only, when it opens its run directory and writes a checkpoint (an
import inside those methods), so that the learners stay importable without this module and
this module can build them.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import yaml

from metarl.algos.base import LearnerConfig, MetaLearner
from metarl.algos.config import config_from_dict, config_to_dict, read_config_file
from metarl.algos.registry import UnknownAlgorithmError, learner_class
from metarl.atomic import atomic_path, remove_stale_temporaries
from metarl.checkpoint import SUFFIX, CheckpointError, load_checkpoint, save_checkpoint, section
from metarl.evaluation.evaluate import task_set_name
from metarl.excerpt import shown

# ---------------------------------------------------------------------------- the layout
#: The run's config: ``algorithm`` and every field of its config, written when the run starts.
CONFIG_FILE = "config.yaml"
#: The run's per-iteration statistics (CSV, one row per meta-iteration).
PROGRESS_FILE = "progress.csv"
#: The run's TensorBoard event folder.
TENSORBOARD_DIR = "tb"
#: The folder of a run directory that holds its checkpoints.
CHECKPOINT_DIR = "checkpoints"
#: The folder of a run directory that holds its held-out evaluation reports.
EVALUATION_DIR = "evaluation"
#: The best checkpoint :class:`~metarl.evaluation.callbacks.EvaluationCallback` keeps, in
#: :data:`CHECKPOINT_DIR`, and its JSON record beside it.
BEST_CHECKPOINT = "best" + SUFFIX
BEST_RECORD = "best.json"

_ITERATION_CHECKPOINT = re.compile(r"iter_(\d+)" + re.escape(SUFFIX) + "$")


def checkpoint_name(iteration: int) -> str:
    """The file name of a run's checkpoint after ``iteration``: ``iter_000042.safetensors``."""
    return f"iter_{iteration:06d}{SUFFIX}"


def checkpoint_path(run_dir: str | Path, iteration: int) -> Path:
    """``run_dir/checkpoints/iter_<iteration>.safetensors``."""
    return Path(run_dir) / CHECKPOINT_DIR / checkpoint_name(iteration)


def best_checkpoint_path(run_dir: str | Path) -> Path:
    """``run_dir/checkpoints/best.safetensors`` (whether or not it exists)."""
    return Path(run_dir) / CHECKPOINT_DIR / BEST_CHECKPOINT


def best_record_path(run_dir: str | Path) -> Path:
    """``run_dir/checkpoints/best.json``: the best checkpoint's iteration, score and report."""
    return Path(run_dir) / CHECKPOINT_DIR / BEST_RECORD


def iteration_checkpoints(run_dir: str | Path) -> list[Path]:
    """The ``iter_*`` checkpoints of a run directory, newest (highest iteration) first (the
    best checkpoint is not among them: it is an earlier iteration's copy)."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    if not folder.is_dir():
        return []
    found = [
        (int(m.group(1)), p) for p in folder.iterdir() if (m := _ITERATION_CHECKPOINT.match(p.name))
    ]
    return [p for _, p in sorted(found, reverse=True)]


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The highest-iteration ``iter_*`` checkpoint of a run directory, or None if it has none."""
    found = iteration_checkpoints(run_dir)
    return found[0] if found else None


def best_checkpoint(run_dir: str | Path) -> Path | None:
    """The run's best checkpoint (kept by a held-out evaluation during training), or None."""
    path = best_checkpoint_path(run_dir)
    return path if path.is_file() else None


def resolve_checkpoint(path: str | Path) -> tuple[Path, Path | None]:
    """``(checkpoint file, run directory or None)`` for ``path``: a run directory (its latest
    checkpoint) or a checkpoint file (its run directory when it sits in one's
    ``checkpoints/``). Raises FileNotFoundError, saying what was looked for, otherwise."""
    path = Path(path)
    if path.is_dir():
        found = latest_checkpoint(path)
        if found is None:
            raise FileNotFoundError(
                f"{path} holds no checkpoint (looked for {CHECKPOINT_DIR}/iter_*{SUFFIX}); give "
                f"a run directory that has trained, or a checkpoint file"
            )
        return found, path
    if not path.exists():
        raise FileNotFoundError(f"no run directory or checkpoint at {str(path)!r}")
    run_dir = path.parent.parent if path.parent.name == CHECKPOINT_DIR else None
    return path, run_dir


def report_path(learner: Any, tasks: Any, seed: int, beside: Path | None = None) -> Path:
    """Where an evaluation report of ``learner`` goes by default:
    ``RUN_DIR/evaluation/<tasks>-iter<N>-seed<S>.json``, or under ``beside`` (a lone
    checkpoint's folder) when the learner has no run directory."""
    folder = learner.run_dir if learner.run_dir is not None else beside
    if folder is None:
        raise ValueError("this learner has no run directory; give the report a path")
    name = f"{task_set_name(tasks)}-iter{learner.iteration:06d}-seed{seed}.json"
    return Path(folder) / EVALUATION_DIR / name


# ---------------------------------------------------------------------------- the log
def _iteration_of(row: list[str], columns: int) -> float:
    """A progress row's iteration; infinity (never kept) for a row that is damaged."""
    try:
        return int(row[0]) if len(row) == columns else math.inf
    except (IndexError, ValueError):
        return math.inf


class RunLog:
    """Appends each iteration's statistics to ``progress.csv`` and to TensorBoard (``tb/``)
    in ``run_dir``. Columns are those of the first row written; a statistic that appears later
    (a held-out evaluation every N iterations) adds a column, earlier rows leaving it empty.

    A resumed run appends. The iterations a stopped run logged after its last checkpoint are
    run again on resume, so the first write of iteration ``i`` drops the rows of iterations
    ``>= i`` from the CSV (rewritten atomically) and TensorBoard purges its events from ``i``:
    the log holds each iteration once, as the resumed run computed it.
    """

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.path = run_dir / PROGRESS_FILE
        self._columns: list[str] | None = None
        self._tb: Any = None
        self._started = False

    def _start(self, iteration: int) -> None:
        """Open the log for a run whose first iteration written is ``iteration``."""
        self._started = True
        if self.path.exists():
            # A power loss can leave NUL bytes or a half-written last line: such rows are
            # dropped (the iterations after the last checkpoint are logged again anyway).
            raw = self.path.read_bytes()
            text = raw.replace(b"\0", b"").decode("utf-8", "replace")
            rows = list(csv.reader(io.StringIO(text, newline="")))
            if rows and rows[0] and rows[0][0] == "iteration":
                self._columns = rows[0]
                kept = [r for r in rows[1:] if _iteration_of(r, len(self._columns)) < iteration]
                if len(kept) < len(rows) - 1 or b"\0" in raw or not raw.endswith(b"\n"):
                    self._rewrite(self._columns, kept)
            elif rows:
                warnings.warn(
                    f"{self.path} has no header row (damaged?); it is started afresh",
                    RuntimeWarning,
                    stacklevel=2,
                )
                self.path.unlink()
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # pragma: no cover - tensorboard is a dependency
            return
        self._tb = SummaryWriter(str(self.run_dir / TENSORBOARD_DIR), purge_step=iteration)

    def write(self, iteration: int, stats: dict[str, Any]) -> None:
        """Log ``stats`` as the row of ``iteration``."""
        if not self._started:
            self._start(iteration)
        row = {"iteration": iteration, **stats}
        if self._columns is None:
            self._columns = list(row)
            with open(self.path, "w", newline="") as handle:
                csv.writer(handle).writerow(self._columns)
        new = [key for key in row if key not in self._columns]
        if new:  # a statistic not logged before (a periodic evaluation): widen the table
            self._columns = [*self._columns, *new]
            with open(self.path, newline="") as handle:
                rows = list(csv.reader(handle))[1:]
            self._rewrite(self._columns, [r + [""] * (len(self._columns) - len(r)) for r in rows])
        with open(self.path, "a", newline="") as handle:
            csv.writer(handle).writerow([row.get(c, "") for c in self._columns])
        if self._tb is not None:
            for key, value in stats.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    self._tb.add_scalar(key, value, iteration)
            self._tb.flush()

    def _rewrite(self, columns: list[str], rows: list[list[str]]) -> None:
        """Replace the CSV, atomically, with ``columns`` and ``rows``."""
        with atomic_path(self.path) as temp, open(temp, "w", newline="") as handle:
            csv.writer(handle).writerows([columns, *rows])

    def close(self) -> None:
        """Close the TensorBoard writer (the CSV is closed after every row)."""
        if self._tb is not None:
            self._tb.close()
            self._tb = None


def open_run(run_dir: str | Path, algorithm: str, config: LearnerConfig) -> RunLog:
    """Make ``run_dir`` a run directory of ``algorithm`` with ``config``: create it, write its
    ``config.yaml`` unless it has a checkpoint (a resumed run keeps the one it started with),
    remove temporary files a killed write left, and return its log."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    for folder in (run_dir, run_dir / CHECKPOINT_DIR):
        remove_stale_temporaries(folder)  # what a run killed mid-write left
    config_file = run_dir / CONFIG_FILE
    # A run with no checkpoint yet is a new run, whatever an earlier one killed before its
    # first checkpoint left here: its config is this one.
    if not config_file.exists() or latest_checkpoint(run_dir) is None:
        document = {"algorithm": algorithm, **config_to_dict(config)}
        with atomic_path(config_file) as temp:
            temp.write_text(yaml.safe_dump(document, sort_keys=False))
    return RunLog(run_dir)


# ---------------------------------------------------------------------------- checkpoints
def write_checkpoint(
    learner: MetaLearner,
    path: str | Path | None = None,
    baseline: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``learner``'s checkpoint: everything needed to continue bit-exactly. Returns the
    path written.

    Args:
        learner: the learner to save.
        path: the file to write; None: its run directory's checkpoint of its iteration
            (``checkpoints/iter_<iteration>.safetensors``).
        baseline: what made the parameters when a baseline did (``metarl baseline
            pretrained`` saves PPO's policy in a learner of the run's inner procedure this
            way), kept in the checkpoint as ``meta["baseline"]``.
    """
    if path is None:
        if learner.run_dir is None:
            raise ValueError("this learner has no run directory; give the checkpoint a path")
        path = checkpoint_path(learner.run_dir, learner.iteration)
    tensors = {f"policy/{k}": v for k, v in learner.policy.state_dict().items()}
    extra_tensors, extra = learner.extra_state()
    tensors.update({f"extra/{k}": v for k, v in extra_tensors.items()})
    meta: dict[str, Any] = {
        "algorithm": learner.algorithm,
        "config": config_to_dict(learner.config),
        "iteration": learner.iteration,
        "env_steps": learner.env_steps,
        "sampler": learner.sampler.state_dict(),
        "task_rng": learner.task_rng.bit_generator.state,
        "extra": extra,
    }
    if baseline is not None:
        meta["baseline"] = dict(baseline)
    return save_checkpoint(path, tensors, meta)


def restore(
    learner: MetaLearner, tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any]
) -> None:
    """Put a checkpoint's state (what :func:`write_checkpoint` wrote) into ``learner``, built
    from the same config: it continues as the saved learner would have."""
    try:
        learner.policy.load_state_dict(section(dict(tensors), "policy"))
    except RuntimeError as err:
        raise ValueError(f"the checkpoint's policy does not fit this config: {err}") from None
    learner.iteration = int(meta["iteration"])
    learner.env_steps = int(meta["env_steps"])
    learner.sampler.load_state_dict(meta["sampler"])
    learner.task_rng.bit_generator.state = meta["task_rng"]
    learner.load_extra_state(section(dict(tensors), "extra"), meta.get("extra", {}))


def load(path: str | Path, **config_overrides: object) -> MetaLearner:
    """The learner saved at ``path`` (a run directory: its latest checkpoint; or a checkpoint
    file), ready to continue training or to adapt. ``config_overrides`` change settings that
    do not affect the results (``num_workers``, ``backend``, ``address``,
    ``checkpoint_every``).

    Loading starts no worker process, thread pool or Ray actor: the sampler starts its
    workers when it first samples (training, adapting, evaluating).
    """
    checkpoint, run_dir = resolve_checkpoint(path)
    if run_dir is not None and Path(path).is_dir():
        checkpoint, tensors, meta = _newest_readable(Path(path))
    else:
        tensors, meta = load_checkpoint(checkpoint)
        _check_meta(meta, checkpoint)
    try:
        cls = learner_class(str(meta.get("algorithm")))
    except UnknownAlgorithmError as err:
        raise UnknownAlgorithmError(f"{checkpoint} was written by {err}") from None
    values = {**meta["config"], **config_overrides}
    try:
        config = config_from_dict(cls.config_class, values, source=str(checkpoint))
    except (ValueError, TypeError) as err:
        raise CheckpointError(f"{checkpoint}: its config does not load: {err}") from None
    _check_policy_shapes(cls, tensors, config, checkpoint)
    # The checkpoint holds the whole state: a warm start's file is not read again (or needed).
    learner = cls(dataclasses.replace(config, init_policy=None), run_dir=run_dir)
    learner.config = config
    restore(learner, tensors, meta)
    return learner


#: What a learner's checkpoint's metadata holds, and the JSON type of each.
_META_KEYS: dict[str, type] = {
    "algorithm": str,
    "config": dict,
    "iteration": int,
    "env_steps": int,
    "sampler": dict,
    "task_rng": dict,
}


def _check_meta(meta: Mapping[str, Any], checkpoint: Path) -> None:
    """A CheckpointError naming the key unless ``meta`` is what :func:`write_checkpoint`
    writes: every key, of its type, and the iteration and env steps whole numbers >= 0."""
    for key, kind in _META_KEYS.items():
        if key not in meta:
            raise CheckpointError(
                f"{checkpoint}: its metadata has no {key!r} (a learner's checkpoint holds "
                f"{list(_META_KEYS)}); is it a learner's checkpoint?"
            )
        value = meta[key]
        if not isinstance(value, kind) or isinstance(value, bool):
            raise CheckpointError(
                f"{checkpoint}: its {key!r} must be a JSON {kind.__name__}, got {shown(value)}"
            )
    for key in ("iteration", "env_steps"):
        if not 0 <= meta[key] < 2**63:
            raise CheckpointError(f"{checkpoint}: its {key!r} must be >= 0, got {meta[key]}")


def _check_policy_shapes(
    cls: type[MetaLearner],
    tensors: Mapping[str, torch.Tensor],
    config: LearnerConfig,
    checkpoint: Path,
) -> None:
    """A CheckpointError unless the policy's tensors have the layers ``config`` says, checked
    before the learner (and its policy) is built from the config: a config edited to huge
    layers must not allocate them (:meth:`MetaLearner.policy_shape_error`)."""
    error = cls.policy_shape_error(section(dict(tensors), "policy"), config)
    if error is not None:
        raise CheckpointError(f"{checkpoint}: {error}: the file is inconsistent")


def _newest_readable(run_dir: Path) -> tuple[Path, dict[str, torch.Tensor], dict[str, Any]]:
    """The newest checkpoint of ``run_dir`` that reads, with its tensors and metadata; a
    damaged newer one is skipped with a warning naming it (a resume then continues from the
    one before, as a run killed earlier would)."""
    skipped: list[str] = []
    for checkpoint in iteration_checkpoints(run_dir):
        try:
            tensors, meta = load_checkpoint(checkpoint)
            _check_meta(meta, checkpoint)
        except CheckpointError as err:
            skipped.append(str(err))
            continue
        for reason in skipped:
            warnings.warn(
                f"skipped a damaged checkpoint, using {checkpoint.name}: {reason}",
                RuntimeWarning,
                stacklevel=3,
            )
        return checkpoint, tensors, meta
    raise CheckpointError(f"{run_dir}: no checkpoint of the run reads: " + "; ".join(skipped))


# ---------------------------------------------------------------------------- start / resume
#: ``metarl train`` with no config: MAML-TRPO on 2-D navigation, about 30 s on 2 cores. The
#: Fisher-vector products on a quarter of the tasks halve the time and learn as much
#: (experiments/RESULTS.md, "The first run's time").
DEFAULT_CONFIG: dict[str, Any] = {
    "algorithm": "maml_trpo",
    "family": "Navigation2D-v0",
    "meta_batch_size": 20,
    "fast_batch_size": 20,
    "fisher_fraction": 0.25,
    "iterations": 30,
    "checkpoint_every": 10,
}

#: Settings that may differ when resuming: they do not change the results.
FREE_ON_RESUME = ("num_workers", "checkpoint_every", "backend", "address")


def default_run_dir(algorithm: str, config: LearnerConfig) -> Path:
    """``runs/<algorithm>-<family>-seed<seed>``: where ``metarl train`` puts a run by default."""
    return Path("runs") / f"{algorithm}-{config.family}-seed{config.seed}"


def start_run(
    config_path: str | Path | None = None,
    run_dir: str | Path | None = None,
    seed: int | None = None,
    resume: bool = False,
    overrides: Mapping[str, Any] | None = None,
) -> MetaLearner:
    """The learner of a new run, or the resumed learner of an existing one, as ``metarl
    train`` makes it.

    Args:
        config_path: a config file (``algorithm:`` and config fields); None:
            :data:`DEFAULT_CONFIG`.
        run_dir: the run directory; None: :func:`default_run_dir`.
        seed: replaces the config's seed.
        resume: continue the run's latest checkpoint (the config must match the run's, but
            for :data:`FREE_ON_RESUME`) instead of starting one.
        overrides: fields of the config file to change (``metarl train CONFIG --set
            inner_lr=0.01``); the run's ``config.yaml`` records the result.

    Raises:
        ValueError: a new run in a directory that holds checkpoints, or a resume with other
            settings than the run's.
        FileNotFoundError: a resume with no checkpoint to resume from.
    """
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
    run_dir = Path(run_dir) if run_dir is not None else default_run_dir(algorithm, config)
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
    learner = load(run_dir, **{name: getattr(config, name) for name in FREE_ON_RESUME})
    saved, given = config_to_dict(learner.config), config_to_dict(config)
    if learner.algorithm != algorithm:
        differ = []
        details = f"algorithm: saved {learner.algorithm!r}, given {algorithm!r}"
    else:
        differ = sorted(k for k in given if k not in FREE_ON_RESUME and saved[k] != given[k])
        details = ", ".join(f"{k}: saved {saved[k]!r}, given {given[k]!r}" for k in differ)
    if details:
        learner.close()
        raise ValueError(
            f"--resume: the run in {run_dir} was trained with other settings ({details}); "
            f"resume it with its own config"
            + (
                "; to train past its iterations, pass --iterations N"
                if "iterations" in differ
                else ""
            )
        )
    return learner


__all__ = [
    "BEST_CHECKPOINT",
    "BEST_RECORD",
    "CHECKPOINT_DIR",
    "CONFIG_FILE",
    "DEFAULT_CONFIG",
    "EVALUATION_DIR",
    "FREE_ON_RESUME",
    "PROGRESS_FILE",
    "TENSORBOARD_DIR",
    "RunLog",
    "best_checkpoint",
    "best_checkpoint_path",
    "best_record_path",
    "checkpoint_name",
    "checkpoint_path",
    "default_run_dir",
    "iteration_checkpoints",
    "latest_checkpoint",
    "load",
    "open_run",
    "report_path",
    "resolve_checkpoint",
    "restore",
    "start_run",
    "write_checkpoint",
]
