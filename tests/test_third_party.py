"""A family written outside the repo, against the public contract alone, found through the
``metarl.families`` entry-point group and used end to end in a fresh interpreter; and the
``metarl families`` command."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import BUNDLED_IDS

PLUGIN = '''
"""A third-party task family: a pendulum-free 1-D reacher, in plain NumPy."""
import gymnasium as gym
import numpy as np
import metarl


class ReachEnv(gym.Env):
    def __init__(self, goal=0.0, gain=1.0):
        self.goal, self.gain = float(goal), float(gain)
        self.observation_space = gym.spaces.Box(-5.0, 5.0, (1,), np.float64)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x = 0.0
        return np.array([self.x]), {}

    def step(self, action):
        self.x = float(np.clip(self.x + 0.1 * self.gain * action[0], -5.0, 5.0))
        r = -abs(self.x - self.goal)
        return np.array([self.x]), r, False, False, {"reward_reach": r}


class ReachFamily(metarl.TaskFamily):
    """Reach a goal on a line with an unknown actuator gain."""

    horizon = 15
    parameters = (
        metarl.Parameter("goal", "goal position", metarl.Uniform(-1.0, 1.0), 0.0),
        metarl.Parameter("gain", "actuator gain", metarl.LogUniform(2.0, -1, 1), 1.0,
                         ood=metarl.LogUniform(2.0, 1, 2)),
    )
    env_class = ReachEnv
'''

USER_SCRIPT = """
import gymnasium as gym, numpy as np, metarl, json
assert "ThirdPartyReach-v0" in metarl.family_ids(), metarl.family_ids()
assert metarl.family_spec("ThirdPartyReach-v0").source == "entry point of thirdparty-reach"
family = metarl.make_family("ThirdPartyReach-v0")
tasks = family.sample_tasks(3, np.random.default_rng(0))
ood = family.ood_tasks(2)
assert all(t.gain >= 2.0 for t in ood)
task = family.task_from_dict(json.loads(json.dumps(tasks[0].to_dict())))
env = family.make_env(task)
obs, info = env.reset(seed=0)
total, steps, done = 0.0, 0, False
while not done:
    obs, r, term, trunc, info = env.step(np.array([1.0], np.float32))
    total += r; steps += 1; done = term or trunc
assert steps == 15 and info["task"] == task
env = gym.make("metarl/ThirdPartyReach-v0", goal=0.5, gain=3.0)
env.reset(seed=0)
assert env.unwrapped.gain == 3.0
print("OK", steps, round(total, 6))
"""


def _write_plugin(root: Path, family_id: str, dist: str = "thirdparty_reach") -> Path:
    site = root / "site"
    (site / "thirdparty_reach").mkdir(parents=True)
    (site / "thirdparty_reach" / "__init__.py").write_text(PLUGIN)
    info = site / f"{dist}-1.0.dist-info"
    info.mkdir()
    name = dist.replace("_", "-")
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        f"[metarl.families]\n{family_id} = thirdparty_reach:ReachFamily\n"
    )
    return site


def _run(args: list[str], site: Path | None, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if site is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300
    )


def test_third_party_family_registers_through_entry_points_and_runs(tmp_path):
    site = _write_plugin(tmp_path, "ThirdPartyReach-v0")
    result = _run(["-c", textwrap.dedent(USER_SCRIPT)], site, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK 15")
    listing = _run(["-m", "metarl", "families"], site, cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    line = next(ln for ln in listing.stdout.splitlines() if ln.startswith("ThirdPartyReach-v0"))
    assert "horizon 15" in line and "gain 2^U(-1, 1)" in line and "(ood 2^U(1, 2)" in line


def test_entry_point_claiming_a_bundled_id_fails_clearly(tmp_path):
    site = _write_plugin(tmp_path, "AntVel-v0", dist="evil_ant")
    result = _run(["-c", "import metarl"], site, cwd=tmp_path)
    assert result.returncode != 0
    assert "evil-ant declares task family 'AntVel-v0'" in result.stderr
    assert "already registered by metarl (bundled)" in result.stderr


def test_cli_lists_every_family_on_one_line(tmp_path):
    result = _run(["-m", "metarl", "families"], None, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert [ln.split()[0] for ln in lines] == sorted(BUNDLED_IDS)
    vel = next(ln for ln in lines if ln.startswith("HalfCheetahVel-v0"))
    assert "horizon 200" in vel and "velocity U(0, 2) (ood U(2, 3))" in vel
    rand = next(ln for ln in lines if ln.startswith("HopperRandParams-v0"))
    assert "dof_damping_scale[6] 1.3^U(-3, 3)" in rand


@pytest.mark.parametrize(
    ("args", "code", "expected"),
    [
        (["families", "AntGoal-v0"], 0, "uniform in the disk of radius 3"),
        (["families", "AntGoall-v0"], 2, "Did you mean 'AntGoal-v0'"),
    ],
)
def test_cli_family_details_and_errors(tmp_path, args, code, expected):
    result = _run(["-m", "metarl", *args], None, cwd=tmp_path)
    assert result.returncode == code
    assert expected in (result.stdout if code == 0 else result.stderr)
