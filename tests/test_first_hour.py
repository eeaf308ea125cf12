"""What a new user meets in their first hour: help texts that read right, commands that say
what they write, MuJoCo's messages kept out of the way, training that shows progress in a log
file, stops cleanly on Ctrl-C and says when it is not learning."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import metarl
from metarl.cli import main


@pytest.mark.parametrize("command", ["evaluate", "plot"])
def test_help_prints_percent_signs_once(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = capsys.readouterr().out
    assert "95% CI" in text and "%%" not in text


def test_plot_needs_an_output_file(capsys):
    with pytest.raises(SystemExit):
        main(["plot", "report.json"])
    assert "-o/--output" in capsys.readouterr().err


def test_the_plot_title_names_the_family_and_task_set(tmp_path, monkeypatch):
    import matplotlib.figure

    from metarl.evaluation import AdaptationReport
    from metarl.evaluation.plot import plot_reports

    titles: list[str] = []

    def savefig(figure, *args, **kwargs):
        titles.extend(ax.get_title() for ax in figure.axes)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", savefig)
    report = AdaptationReport(
        family="Navigation2D-v0",
        learner="maml_trpo",
        tasks=[{"goal": [0.1, 0.2]}],
        returns=[[[1.0], [2.0]]],
        episodes=1,
        label="MAML-TRPO",
        info={"task_set": "ood"},
    )
    plot_reports([report], tmp_path / "curves.png")
    plot_reports([report], tmp_path / "curves.png", title="mine")
    assert titles == ["Navigation2D-v0, ood tasks", "mine"]


def test_mujoco_leaves_no_log_file_and_no_deprecation_warning(tmp_path):
    """Building a HalfCheetah (whose XML has the deprecated ``settotalmass``) and blowing up
    its physics print no MuJoCo warning and leave no MUJOCO_LOG.TXT; the model compiled
    without the attribute is Gymnasium's model to the bit."""
    script = """
import numpy as np, metarl
family = metarl.make_family("HalfCheetahVel-v0")
env = family.make_env(family.default_task())
env.reset(seed=0)
env.unwrapped.data.qvel[:] = 1e30
*_, info = env.step(np.zeros(6, dtype=np.float32))
assert info["sim_unstable"], info
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert "settotalmass" not in done.stdout + done.stderr
    assert "WARNING" not in done.stdout + done.stderr
    assert not (tmp_path / "MUJOCO_LOG.TXT").exists()


def test_the_model_compiled_without_settotalmass_is_the_same_model():
    import gymnasium.envs.mujoco
    import mujoco
    import numpy as np

    from metarl.mujoco.messages import compile_model

    path = Path(gymnasium.envs.mujoco.__file__).parent / "assets" / "half_cheetah.xml"
    assert "settotalmass" in path.read_text()
    ours, theirs = compile_model(path), mujoco.MjModel.from_xml_path(str(path))
    compared = 0
    for name in dir(theirs):
        value = getattr(theirs, name, None)
        if isinstance(value, np.ndarray) and not name.startswith("_"):
            np.testing.assert_array_equal(getattr(ours, name), value, err_msg=name)
            compared += 1
    assert compared > 50


TINY = (
    "algorithm: maml_trpo\nfamily: Navigation2D-v0\nmeta_batch_size: 2\nfast_batch_size: 2\n"
    "hidden_sizes: [8]\nnum_workers: 0\niterations: 2\ncheckpoint_every: 10\n"
)


def test_train_prints_a_line_per_iteration_when_not_on_a_terminal(tmp_path, capsys):
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY)
    assert main(["train", str(config), "--run-dir", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    for i in (1, 2):
        assert f"iteration {i} ({i}/2): return before" in out
    assert main(["train", str(config), "--run-dir", str(tmp_path / "run"), "--resume"]) == 0
    assert "already has 2 iterations (>= 2): nothing to train" in capsys.readouterr().out
    for bad in ("0", "-1"):
        with pytest.raises(SystemExit):
            main(["train", str(config), "--iterations", bad])
        assert "--iterations: must be >= 1" in capsys.readouterr().err


def test_ctrl_c_checkpoints_the_iteration_and_says_how_to_resume(tmp_path):
    """A Ctrl-C (SIGINT) during training finishes the iteration, checkpoints it, and exits
    130 with the command that resumes; the resumed run then continues from it."""
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY.replace("iterations: 2", "iterations: 50"))
    run = tmp_path / "run"
    command = [sys.executable, "-m", "metarl", "train", str(config), "--run-dir", str(run)]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path
    ) as process:
        for line in process.stdout:
            if line.startswith("iteration 1 "):
                process.send_signal(signal.SIGINT)
                break
        _, err = process.communicate(timeout=300)
    assert process.returncode == 130, err
    assert "Traceback" not in err and "--resume" in err
    with metarl.load(run) as learner:
        interrupted = learner.iteration
    assert 1 <= interrupted < 50
    assert (run / "checkpoints" / f"iter_{interrupted:06d}.safetensors").exists()
    resume = ["train", str(config), "--run-dir", str(run), "--resume", "--iterations"]
    assert main([*resume, str(interrupted + 1)]) == 0


def test_updates_rejected_many_times_in_a_row_say_so(tmp_path, monkeypatch):
    config = metarl.MAMLTRPOConfig(
        family="Navigation2D-v0", meta_batch_size=2, fast_batch_size=2, hidden_sizes=(8,),
        num_workers=0,
    )  # fmt: skip
    with metarl.MAMLTRPO(config) as learner:
        monkeypatch.setattr(learner, "meta_step", lambda: {"update": "rejected: restored"})
        with pytest.warns(RuntimeWarning, match="the last 5 iterations .* made no update"):
            learner.train(5)


def test_plot_training_draws_a_runs_progress(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "progress.csv").write_text(
        "iteration,return_before,return_after,heldout/return_step_0,env_steps\n"
        "1,-40,-30,,100\n2,-35,-20,-33,200\n"
    )
    out = tmp_path / "training.png"
    assert main(["plot-training", str(run), "-o", str(out)]) == 0
    assert out.stat().st_size > 1000
    assert main(["plot-training", str(tmp_path), "-o", str(out)]) == 2
    assert "no progress.csv" in capsys.readouterr().err


def test_importing_metarl_shortens_openmp_spinning_unless_the_user_chose(tmp_path):
    """GOMP_SPINCOUNT (how long torch's idle threads spin) is set before torch loads, and a
    value in the environment is kept (benchmarks/shared_cores.py measures why)."""
    script = "import os, sys, metarl; print(os.environ['GOMP_SPINCOUNT'], 'torch' in sys.modules)"
    env = {k: v for k, v in os.environ.items() if k != "GOMP_SPINCOUNT"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert done.stdout.split() == [metarl.SPIN_COUNT, "False"]
    env["GOMP_SPINCOUNT"] = "7"
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert done.stdout.split() == ["7", "False"]
