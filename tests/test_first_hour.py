"""What a new user meets in their first hour: help texts that read right, commands that say
what they write."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

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
