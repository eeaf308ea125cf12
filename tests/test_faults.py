"""Faults a run survives, or reports in one line: damaged checkpoints and logs (a corrupt
latest checkpoint, a NUL-padded progress.csv after a power loss, temporary files of a killed
write, a stale config.yaml), checkpoint metadata that is wrong, checkpoint file modes."""

from __future__ import annotations

import os
import stat

import pytest

import metarl
from metarl import runs
from metarl.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from metarl.cli import main

CONFIG = (
    "algorithm: maml_trpo\nfamily: Navigation2D-v0\nmeta_batch_size: 2\nfast_batch_size: 2\n"
    "hidden_sizes: [8]\nnum_workers: 0\niterations: 2\ncheckpoint_every: 1\n"
)


@pytest.fixture()
def run(tmp_path):
    """A trained run of two iterations, a checkpoint after each."""
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG)
    assert main(["train", str(config), "--run-dir", str(tmp_path / "run")]) == 0
    return tmp_path / "run"


def _rewrite_meta(path, **changes):
    tensors, meta = load_checkpoint(path)
    for key, value in changes.items():
        if value is None:
            del meta[key]
        else:
            meta[key] = value
    meta.pop("format"), meta.pop("version")
    save_checkpoint(path, tensors, meta)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"iteration": None}, "its metadata has no 'iteration'"),
        ({"iteration": float("inf")}, "its 'iteration' must be a JSON int"),
        ({"iteration": 2.5}, "its 'iteration' must be a JSON int"),
        ({"iteration": -4}, "its 'iteration' must be >= 0"),
        ({"env_steps": -1}, "its 'env_steps' must be >= 0"),
        ({"sampler": "x"}, "its 'sampler' must be a JSON dict"),
    ],
)
def test_bad_checkpoint_metadata_gets_one_clear_error(run, tmp_path, changes, message, capsys):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes((run / "checkpoints" / "iter_000002.safetensors").read_bytes())
    _rewrite_meta(bad, **changes)
    with pytest.raises(CheckpointError, match=message):
        metarl.load(bad)
    capsys.readouterr()
    assert main(["evaluate", str(bad), "--num-tasks", "1", "--episodes", "1"]) == 2
    err = capsys.readouterr().err
    assert message.split("'")[0] in err and "Traceback" not in err and len(err) < 500


def test_a_config_that_disagrees_with_the_tensors_allocates_nothing(run, tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes((run / "checkpoints" / "iter_000002.safetensors").read_bytes())
    _, meta = load_checkpoint(bad)
    _rewrite_meta(bad, config={**meta["config"], "hidden_sizes": [100_000, 100_000]})
    with pytest.raises(CheckpointError, match=r"hidden_sizes \[100000, 100000\].* are \[8\]"):
        metarl.load(bad)


def test_resume_skips_a_corrupt_latest_checkpoint_naming_it(run, tmp_path, capsys):
    latest = run / "checkpoints" / "iter_000002.safetensors"
    latest.write_bytes(latest.read_bytes()[:100])  # truncated, as by a full disk
    with pytest.warns(RuntimeWarning, match="skipped a damaged checkpoint, using iter_000001"):
        learner = metarl.load(run)
    assert (learner.iteration == 1 and "iter_000002" in str(learner)) or learner.iteration == 1
    learner.close()
    config = tmp_path / "config.yaml"
    with pytest.warns(RuntimeWarning, match="iter_000002.safetensors is not a readable"):
        assert main(["train", str(config), "--run-dir", str(run), "--resume"]) == 0
    with metarl.load(run) as again:  # iteration 2, trained again from iteration 1
        assert again.iteration == 2
    for path in runs.iteration_checkpoints(run):
        path.write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="no checkpoint of the run reads"):
        metarl.load(run)


def test_resume_survives_a_nul_padded_log_and_removes_stale_temporaries(run, tmp_path):
    progress = run / "progress.csv"
    with open(progress, "ab") as handle:
        handle.write(b"\0" * 4096)  # what a power loss typically leaves
    stale = run / "checkpoints" / ".iter_000003.safetensors.999999999.abcd1234.tmp"
    stale.write_bytes(b"half a checkpoint")
    config = tmp_path / "config.yaml"
    assert main(["train", str(config), "--run-dir", str(run), "--resume", "--iterations", "3"]) == 0
    rows = progress.read_text().splitlines()
    assert [row.split(",")[0] for row in rows] == ["iteration", "1", "2", "3"]
    assert not stale.exists()


def test_a_new_run_replaces_the_config_of_one_killed_before_its_first_checkpoint(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(CONFIG.replace("meta_batch_size: 2", "meta_batch_size: 7"))
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG.replace("iterations: 2", "iterations: 1"))
    assert main(["train", str(config), "--run-dir", str(run)]) == 0
    assert "meta_batch_size: 2" in (run / "config.yaml").read_text()


def test_checkpoints_get_the_mode_of_the_runs_other_files(run):
    """safetensors writes 0o600; a checkpoint gets what any new file gets (the umask's)."""
    mode = stat.S_IMODE(os.stat(run / "checkpoints" / "iter_000001.safetensors").st_mode)
    assert mode == stat.S_IMODE(os.stat(run / "progress.csv").st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask
