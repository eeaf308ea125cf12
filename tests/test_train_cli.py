"""``metarl train``: new runs, resume, refusals, and the default config."""

from __future__ import annotations

from pathlib import Path

import yaml

from metarl.algos import learner_class
from metarl.algos.config import config_from_dict, read_config_file
from metarl.cli import main
from metarl.runs import DEFAULT_CONFIG

TINY = """\
algorithm: maml_trpo
family: Navigation2D-v0
meta_batch_size: 2
fast_batch_size: 2
hidden_sizes: [8]
num_workers: 0
checkpoint_every: 1
iterations: 2
"""


def test_train_resume_and_refusals(tmp_path, capsys):
    config, run = tmp_path / "tiny.yaml", tmp_path / "run"
    config.write_text(TINY)
    assert main(["train", str(config), "--run-dir", str(run)]) == 0
    out = capsys.readouterr().out
    assert "iteration 2: mean return before adaptation" in out and "after" in out
    assert sorted(p.name for p in (run / "checkpoints").iterdir())[-1] == "iter_000002.safetensors"
    # A second start in the same directory would mix two runs: refused.
    assert main(["train", str(config), "--run-dir", str(run)]) == 2
    assert "--resume" in capsys.readouterr().err
    # Resume continues to the requested total.
    assert main(["train", str(config), "--run-dir", str(run), "--resume", "--iterations", "3"]) == 0
    assert "iteration 3:" in capsys.readouterr().out
    assert len((run / "progress.csv").read_text().strip().splitlines()) == 1 + 3
    # Resuming with other settings, or with nothing to resume, is refused.
    config.write_text(TINY.replace("fast_batch_size: 2", "fast_batch_size: 3"))
    assert main(["train", str(config), "--run-dir", str(run), "--resume"]) == 2
    assert "fast_batch_size: saved 2, given 3" in capsys.readouterr().err
    # The config's iterations are the run's schedule; --iterations trains past them.
    config.write_text(TINY.replace("iterations: 2", "iterations: 4"))
    assert main(["train", str(config), "--run-dir", str(run), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "iterations: saved 2, given 4" in err and "pass --iterations N" in err
    assert main(["train", str(config), "--run-dir", str(tmp_path / "empty"), "--resume"]) == 2
    assert "holds no checkpoint" in capsys.readouterr().err
    config.write_text(TINY + "inner_rl: 0.1\n")
    assert main(["train", str(config), "--run-dir", str(tmp_path / "x")]) == 2
    assert "did you mean 'inner_lr'" in capsys.readouterr().err


def test_the_default_config_is_the_shipped_navigation_config():
    shipped = Path(__file__).parents[1] / "experiments" / "navigation2d_maml_trpo.yaml"
    assert yaml.safe_load(shipped.read_text()) == DEFAULT_CONFIG


def test_every_shipped_experiment_config_loads():
    """A typo in a shipped config would only show when someone runs it: load them all."""
    experiments = Path(__file__).parents[1] / "experiments"
    shipped = sorted(experiments.glob("**/*.yaml"))
    assert len(shipped) >= 5
    for path in shipped:
        algorithm, values = read_config_file(path)
        config_from_dict(learner_class(algorithm).config_class, values, str(path))


def test_set_overrides_config_fields(tmp_path, capsys):
    config, run = tmp_path / "tiny.yaml", tmp_path / "run"
    config.write_text(TINY)
    args = ["train", str(config), "--run-dir", str(run), "--set", "inner_lr=0.05"]
    assert main([*args, "--set", "hidden_sizes=[4, 4]", "--iterations", "1"]) == 0
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["inner_lr"] == 0.05 and saved["hidden_sizes"] == [4, 4]
    # resuming needs the same settings: with the same --set it continues ...
    resume = [*args, "--set", "hidden_sizes=[4, 4]", "--resume", "--iterations", "2"]
    assert main(resume) == 0
    # ... without them it is refused, naming the difference
    assert main(["train", str(config), "--run-dir", str(run), "--resume"]) == 2
    assert "inner_lr: saved 0.05, given 0.1" in capsys.readouterr().err
    for bad, message in (
        ("inner_lr", "--set takes KEY=VALUE"),
        ("inner_rl=0.1", "did you mean 'inner_lr'"),
        ("inner_lr=[1", "not valid YAML"),
        ("algorithm=reptile", "cannot change the algorithm"),
    ):
        assert main(["train", str(config), "--run-dir", str(tmp_path / "x"), "--set", bad]) == 2
        assert message in capsys.readouterr().err


def test_an_old_field_name_says_what_it_is_called_now(tmp_path, capsys):
    config = tmp_path / "old.yaml"
    config.write_text(TINY + "fast_lr: 0.1\n")
    assert main(["train", str(config), "--run-dir", str(tmp_path / "run")]) == 2
    assert "unknown key 'fast_lr'" in (err := capsys.readouterr().err)
    assert "it is called 'inner_lr' now" in err


def test_the_sampler_backend_is_a_config_key_and_a_flag(tmp_path, capsys):
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY)
    run = tmp_path / "run"
    assert main(["train", str(config), "--run-dir", str(run), "--backend", "dask"]) == 2
    assert "unknown sampler backend 'dask'; available: ['local', 'ray']" in capsys.readouterr().err
    config.write_text(TINY + "backend: local\n")
    assert main(["train", str(config), "--run-dir", str(run), "--iterations", "1"]) == 0
    assert yaml.safe_load((run / "config.yaml").read_text())["backend"] == "local"
    # The backend does not change the results, so a run may resume on another one.
    args = ["train", str(config), "--run-dir", str(run), "--resume", "--iterations", "2"]
    assert main([*args, "--backend", "local", "--address", "unused-by-local"]) == 0


def test_workers_that_keep_dying_end_training_with_one_line(tmp_path, capsys, monkeypatch):
    """The sampler replaces dead workers (tests/test_sampler.py); past its limit, the CLI says
    so in one line, and how to go on, instead of a traceback."""
    from metarl.algos.base import MetaLearner
    from metarl.sampling import WorkerError

    def dies(self, *args, **kwargs):
        raise WorkerError("sampler worker 0 (pid 1) died with exit code -9. Sampler workers died 4")

    monkeypatch.setattr(MetaLearner, "train", dies)
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY)
    assert main(["train", str(config), "--run-dir", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "died" in err and "continue it with --resume" in err
