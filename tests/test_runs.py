"""Runs (:mod:`metarl.runs`): the run directory's layout and checkpoint names, latest/best
lookup, resolving a path to a checkpoint, loading (which starts no workers), starting and
resuming."""

from __future__ import annotations

import multiprocessing as mp
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from metarl_envs.navigation import Navigation2DEnv

import metarl
from metarl import runs
from metarl.algos.maml_trpo import MAMLTRPO
from metarl.checkpoint import CheckpointError, load_checkpoint
from metarl.cli import main
from tests.test_maml_trpo import tiny_config
from tests.test_train_cli import TINY

RESULTS = Path(__file__).parents[1] / "experiments" / "results"


# ---------------------------------------------------------------------------- layout
def test_a_run_directory_holds_config_log_and_named_checkpoints(tmp_path):
    run = tmp_path / "run"
    with MAMLTRPO(tiny_config(), run_dir=run) as learner:  # checkpoint_every=2
        learner.train(3)
    layout = [runs.CHECKPOINT_DIR, runs.CONFIG_FILE, runs.PROGRESS_FILE, runs.TENSORBOARD_DIR]
    assert layout == ["checkpoints", "config.yaml", "progress.csv", "tb"]
    assert sorted(p.name for p in run.iterdir()) == layout
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert names == ["iter_000002.safetensors", "iter_000003.safetensors"]
    assert runs.checkpoint_path(run, 2) == run / "checkpoints" / "iter_000002.safetensors"
    assert runs.latest_checkpoint(run) == run / "checkpoints" / "iter_000003.safetensors"
    assert runs.best_checkpoint(run) is None
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["algorithm"] == "maml_trpo" and config["family"] == "Navigation2D-v0"
    _, meta = load_checkpoint(runs.latest_checkpoint(run))
    assert (meta["algorithm"], meta["iteration"]) == ("maml_trpo", 3)


def test_latest_is_the_highest_iteration_and_best_is_apart(tmp_path):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    assert runs.latest_checkpoint(tmp_path / "nowhere") is None
    assert runs.latest_checkpoint(tmp_path) is None
    for name in ("iter_000009.safetensors", "iter_000010.safetensors", "best.safetensors"):
        (folder / name).touch()
    (folder / "iter_000099.safetensors.tmp").touch()  # an interrupted write
    (folder / "notes.txt").touch()
    assert runs.latest_checkpoint(tmp_path) == folder / "iter_000010.safetensors"
    assert runs.best_checkpoint(tmp_path) == folder / "best.safetensors"
    assert runs.best_record_path(tmp_path) == folder / "best.json"
    assert runs.checkpoint_name(1_234_567) == "iter_1234567.safetensors"


def test_report_path_is_under_the_run_or_beside_a_lone_checkpoint(tmp_path):
    with MAMLTRPO(tiny_config()) as learner:
        with pytest.raises(ValueError, match="no run directory"):
            runs.report_path(learner, "test", 0)
        assert runs.report_path(learner, "ood", 3, beside=tmp_path) == (
            tmp_path / "evaluation" / "ood-iter000000-seed3.json"
        )
        learner.run_dir = tmp_path / "run"
        assert runs.report_path(learner, "test", 0) == (
            tmp_path / "run" / "evaluation" / "test-iter000000-seed0.json"
        )


# ---------------------------------------------------------------------------- resolve, load
def test_resolve_checkpoint_of_a_directory_a_file_and_nothing(tmp_path):
    run = tmp_path / "run"
    MAMLTRPO(tiny_config(), run_dir=run).train(2).close()
    latest = run / "checkpoints" / "iter_000002.safetensors"
    assert runs.resolve_checkpoint(run) == (latest, run)
    assert runs.resolve_checkpoint(str(latest)) == (latest, run)
    lone = tmp_path / "lone.safetensors"
    lone.write_bytes(latest.read_bytes())
    assert runs.resolve_checkpoint(lone) == (lone, None)
    with pytest.raises(FileNotFoundError, match=r"holds no checkpoint \(looked for checkpoints"):
        runs.resolve_checkpoint(tmp_path / "run" / "tb")
    with pytest.raises(FileNotFoundError, match="no run directory or checkpoint at"):
        runs.resolve_checkpoint(tmp_path / "missing")
    # A learner loaded from a lone file has no run directory; one from a run dir has it.
    with metarl.load(lone) as alone, metarl.load(latest) as inside:
        assert alone.run_dir is None and inside.run_dir == run
        assert alone.iteration == inside.iteration == 2


def test_load_raises_clearly_on_bad_paths_and_files(tmp_path):
    with MAMLTRPO(tiny_config()) as learner:
        good = runs.write_checkpoint(learner, tmp_path / "good.safetensors").read_bytes()
        with pytest.raises(ValueError, match="no run directory; give the checkpoint a path"):
            runs.write_checkpoint(learner)
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(good[: len(good) // 2])
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x80\x04not a checkpoint at all")
    foreign = tmp_path / "foreign.safetensors"
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(foreign))
    for bad in (truncated, junk):
        with pytest.raises(CheckpointError, match="corrupt or truncated"):
            metarl.load(bad)
    with pytest.raises(CheckpointError, match="not a metarl checkpoint"):
        metarl.load(foreign)
    with pytest.raises(FileNotFoundError, match="holds no checkpoint"):
        metarl.load(tmp_path)
    with pytest.raises(FileNotFoundError, match="no run directory or checkpoint"):
        metarl.load(tmp_path / "missing")


def test_metarl_load_is_the_runs_load():
    import metarl.algos

    assert metarl.load is runs.load
    assert not hasattr(metarl.algos, "load") and not hasattr(metarl.algos, "resolve_checkpoint")


@pytest.mark.parametrize(
    "name",
    [
        "halfcheetah_crippled_joint/maml_trpo.safetensors",
        "halfcheetah_crippled_joint/reptile.safetensors",
    ],
)
def test_committed_checkpoints_still_load(name):
    with metarl.load(RESULTS / name, num_workers=0) as learner:
        _, meta = load_checkpoint(RESULTS / name)
        assert learner.algorithm == meta["algorithm"] and learner.iteration == meta["iteration"]
        assert learner.run_dir is None


def test_loading_starts_no_worker_until_something_samples(tmp_path, monkeypatch):
    run = tmp_path / "run"
    MAMLTRPO(tiny_config(), run_dir=run).train(1).close()
    assert mp.active_children() == []
    # As a family without a vector step: its envs step in worker processes.
    monkeypatch.delattr(Navigation2DEnv, "vector_step")
    learner = metarl.load(run, num_workers=2)
    try:
        assert learner.sampler.num_workers == 2
        assert not learner.sampler.started and mp.active_children() == []
        tasks = learner.family.test_tasks(2)
        learner.sampler.sample(tasks, None, episodes_per_task=2)
        assert learner.sampler.started and len(mp.active_children()) == 2
    finally:
        learner.close()
    assert mp.active_children() == []


def test_a_script_read_from_stdin_loads_a_run_and_samples_in_worker_processes(tmp_path):
    """``python - < script.py``: loading starts no workers, and the workers sampling starts
    do not try to import a main module that is not a file ("<stdin>")."""
    config, run = tmp_path / "tiny.yaml", tmp_path / "run"
    config.write_text(TINY)
    assert main(["train", str(config), "--run-dir", str(run), "--iterations", "1"]) == 0
    script = f"""
import multiprocessing as mp
import metarl
from metarl_envs.navigation import Navigation2DEnv
del Navigation2DEnv.vector_step  # as a family without one: worker processes
learner = metarl.load({str(run)!r}, num_workers=2)
assert not learner.sampler.started and mp.active_children() == []
params = learner.adapt(learner.family.test_tasks(1)[0], episodes=2, steps=1)
same_names = sorted(params) == sorted(learner.policy.params())
print("adapted on", learner.sampler.num_workers, "workers:", same_names)
learner.close()
"""
    done = subprocess.run(
        [sys.executable, "-"], input=script, text=True, capture_output=True, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert "adapted on 2 workers: True" in done.stdout


# ---------------------------------------------------------------------------- start, resume
def test_start_refuses_a_directory_that_holds_a_run_and_resume_refuses_other_settings(tmp_path):
    config, run = tmp_path / "tiny.yaml", tmp_path / "run"
    config.write_text(TINY)
    with runs.start_run(config, run) as learner:
        assert learner.run_dir == run and learner.iteration == 0
        learner.train(2)
    with pytest.raises(ValueError, match=r"already holds a run \(latest checkpoint iter_000002"):
        runs.start_run(config, run)
    with pytest.raises(FileNotFoundError, match="holds no checkpoint to resume from"):
        runs.start_run(config, tmp_path / "empty", resume=True)
    # Settings that do not change the results may differ; the others may not.
    with runs.start_run(config, run, resume=True, overrides={"num_workers": 1}) as resumed:
        assert resumed.iteration == 2 and resumed.config.num_workers == 1
    with pytest.raises(ValueError, match="fast_batch_size: saved 2, given 3"):
        runs.start_run(config, run, resume=True, overrides={"fast_batch_size": 3})
    with pytest.raises(ValueError, match="seed: saved 0, given 1"):
        runs.start_run(config, run, seed=1, resume=True)
    reptile = tmp_path / "reptile.yaml"
    reptile.write_text(TINY.replace("maml_trpo", "reptile") + "ppo_minibatches: 1\n")
    with pytest.raises(ValueError, match="algorithm: saved 'maml_trpo', given 'reptile'"):
        runs.start_run(reptile, run, resume=True)
    with pytest.raises(ValueError, match="cannot change the algorithm"):
        runs.start_run(config, tmp_path / "x", overrides={"algorithm": "reptile"})


def test_the_default_run_directory_names_algorithm_family_and_seed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with runs.start_run(seed=3, overrides={"num_workers": 0}) as learner:
        assert learner.run_dir == Path("runs/maml_trpo-Navigation2D-v0-seed3")
        assert learner.config.meta_batch_size == runs.DEFAULT_CONFIG["meta_batch_size"]
    assert (tmp_path / learner.run_dir / "config.yaml").is_file()
