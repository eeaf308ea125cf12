"""A meta-learner written outside the repo, against the public contract alone, found through
the ``metarl.algorithms`` entry-point group, trained by ``metarl train`` and evaluated by
``metarl evaluate`` in a fresh interpreter; and the registry's refusals."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import metarl
from metarl.algos import MAMLTRPO, MAMLTRPOConfig
from metarl.algos.registry import algorithm_spec
from metarl.checkpoint import load_checkpoint

PLUGIN = '''
"""A third-party meta-learner: joint multi-task VPG, adapted at test time by VPG steps."""
from dataclasses import dataclass

import torch

import metarl
from metarl.adaptation import Adaptation
from metarl.algos.base import inner_return_stats, mean_valid_return
from metarl.algos.policy_gradient import TaskData, gaussian_log_prob, per_step_log_std, vpg_loss
from metarl.policies import GaussianMLPPolicy


@dataclass(frozen=True)
class JointVPGConfig(metarl.LearnerConfig):
    """The shared fields (family, tasks and episodes per iteration, gamma, ...) and two more."""

    lr: float = 0.05
    inner_lr: float = 0.05


def vpg_losses(learner, params, batch):
    cfg = learner.config
    data = TaskData.from_batch(batch, cfg.gamma, cfg.gae_lambda)
    mean, log_std = learner.policy.mean_and_log_std_stacked(data.observations, params)
    log_prob = gaussian_log_prob(mean, per_step_log_std(log_std, mean), data.actions)
    return vpg_loss(log_prob, data.advantages, data.mask)


class VPGAdaptation(Adaptation):
    def __init__(self, learner, n_tasks):
        self.learner = learner
        stacked = learner.stacked_params(n_tasks)
        self.params = {k: v.requires_grad_(True) for k, v in stacked.items()}

    def step(self, batch):
        losses = vpg_losses(self.learner, self.params, batch)
        grads = torch.autograd.grad(losses.sum(), list(self.params.values()))
        lr = self.learner.config.inner_lr
        self.params = {
            k: (v - lr * g).detach().requires_grad_(True)
            for (k, v), g in zip(self.params.items(), grads)
        }


class JointVPG(metarl.MetaLearner):
    algorithm = "joint_vpg"
    display_name = "Joint VPG"
    config_class = JointVPGConfig

    def adaptation(self, tasks, seed=None):
        return VPGAdaptation(self, len(tasks))

    def meta_step(self):
        cfg = self.config
        tasks = self.family.sample_tasks(cfg.meta_batch_size, self.task_rng)
        params = self.stacked_params(len(tasks))
        per_task = GaussianMLPPolicy.unstack_params(params)
        batch = self.sampler.sample(tasks, per_task, cfg.fast_batch_size)
        self.env_steps += batch.num_env_steps
        n = len(tasks)
        live = {k: v.unsqueeze(0).expand(n, *v.shape) for k, v in self.policy.params().items()}
        loss = vpg_losses(self, live, batch).mean()
        grads = torch.autograd.grad(loss, list(self.policy.parameters()))
        with torch.no_grad():
            for p, g in zip(self.policy.parameters(), grads):
                p -= cfg.lr * g
        return inner_return_stats([mean_valid_return(batch)])
'''

CONFIG = """\
algorithm: joint_vpg
family: Navigation2D-v0
meta_batch_size: 3
fast_batch_size: 3
hidden_sizes: [8]
num_workers: 0
checkpoint_every: 1
iterations: 2
"""


def _write_plugin(root: Path, name: str = "joint_vpg", dist: str = "thirdparty_vpg") -> Path:
    site = root / "site"
    (site / "thirdparty_vpg").mkdir(parents=True)
    (site / "thirdparty_vpg" / "__init__.py").write_text(PLUGIN)
    info = site / f"{dist}-1.0.dist-info"
    info.mkdir()
    dist_name = dist.replace("_", "-")
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist_name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        f"[metarl.algorithms]\n{name} = thirdparty_vpg:JointVPG\n"
    )
    return site


def _run(args: list[str], site: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300
    )


def test_third_party_learner_trains_and_evaluates_through_the_cli(tmp_path):
    site = _write_plugin(tmp_path)
    (tmp_path / "joint.yaml").write_text(CONFIG)
    listing = _run(["-m", "metarl", "algorithms"], site, tmp_path)
    assert listing.returncode == 0, listing.stderr
    line = next(ln for ln in listing.stdout.splitlines() if ln.startswith("joint_vpg"))
    assert "Joint VPG" in line and "thirdparty_vpg:JointVPG" in line
    assert "entry point of thirdparty-vpg" in line

    train = _run(["-m", "metarl", "train", "joint.yaml", "--run-dir", "run"], site, tmp_path)
    assert train.returncode == 0, train.stderr
    assert "iteration 2: mean return before adaptation" in train.stdout
    _, saved = load_checkpoint(tmp_path / "run" / "checkpoints" / "iter_000002.safetensors")
    assert saved["algorithm"] == "joint_vpg" and saved["config"]["lr"] == 0.05

    args = ["--num-tasks", "3", "--episodes", "2", "--steps", "1", "--out"]
    evaluate = _run(["-m", "metarl", "evaluate", "run", *args, "eval.json"], site, tmp_path)
    assert evaluate.returncode == 0, evaluate.stderr
    report = json.loads((tmp_path / "eval.json").read_text())
    assert report["learner"] == "joint_vpg" and report["label"] == "Joint VPG (iteration 2)"
    assert report["steps"] == [0, 1] and report["info"]["iteration"] == 2
    # the baselines take its inner procedure too
    baseline = ["-m", "metarl", "baseline", "random-init", "--like", "run", *args, "rand.json"]
    result = _run(baseline, site, tmp_path)
    assert result.returncode == 0, result.stderr
    rand = json.loads((tmp_path / "rand.json").read_text())
    assert rand["label"] == "random init (Joint VPG adaptation)"

    # without the plugin installed, its checkpoint names what is missing
    env = dict(os.environ)
    plain = subprocess.run(
        [sys.executable, "-m", "metarl", "evaluate", "run", *args, "x.json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert plain.returncode != 0
    assert "unknown algorithm 'joint_vpg'" in plain.stderr
    assert "metarl.algorithms" in plain.stderr


def test_entry_point_claiming_a_bundled_name_fails_clearly(tmp_path):
    site = _write_plugin(tmp_path, name="maml_trpo", dist="evil_maml")
    assert _run(["-c", "import metarl"], site, tmp_path).returncode == 0  # learners load lazily
    result = _run(["-c", "import metarl; metarl.algorithm_names()"], site, tmp_path)
    assert result.returncode != 0
    assert "evil-maml declares algorithm 'maml_trpo'" in result.stderr
    assert "already registered by metarl (bundled)" in result.stderr


def test_an_entry_point_whose_class_disagrees_with_its_name_fails_when_used(tmp_path):
    site = _write_plugin(tmp_path, name="other_name")
    script = "import metarl; metarl.learner_class('other_name')"
    result = _run(["-c", script], site, tmp_path)
    assert result.returncode != 0
    assert "JointVPG.algorithm is 'joint_vpg', but it is registered as 'other_name'" in (
        result.stderr
    )


@dataclasses.dataclass(frozen=True)
class _RenamedConfig(MAMLTRPOConfig):
    pass


class _Renamed(MAMLTRPO):
    algorithm = "renamed_maml"
    config_class = _RenamedConfig


def test_register_save_load_and_unregister_in_process(tmp_path):
    assert _Renamed.display_name == "renamed_maml"  # not the parent's "MAML-TRPO"
    metarl.register_algorithm("renamed_maml", _Renamed)
    try:
        assert "renamed_maml" in metarl.algorithm_names()
        assert algorithm_spec("renamed_maml").source == "register_algorithm"
        with pytest.raises(ValueError, match="already registered"):
            metarl.register_algorithm("renamed_maml", _Renamed)
        metarl.register_algorithm("renamed_maml", _Renamed, override=True)
        config = _RenamedConfig(
            family="Navigation2D-v0", meta_batch_size=2, fast_batch_size=2, hidden_sizes=(4,)
        )
        learner = _Renamed(config)
        try:
            learner.save(tmp_path / "renamed.safetensors")
        finally:
            learner.close()
        loaded = metarl.load(tmp_path / "renamed.safetensors", num_workers=0)
        try:
            assert type(loaded) is _Renamed
        finally:
            loaded.close()
    finally:
        metarl.unregister_algorithm("renamed_maml")
    assert "renamed_maml" not in metarl.algorithm_names()
    with pytest.raises(metarl.UnknownAlgorithmError, match="unknown algorithm 'renamed_maml'"):
        metarl.load(tmp_path / "renamed.safetensors")


def test_malformed_registrations_are_refused():
    with pytest.raises(ValueError, match="lower case letters"):
        metarl.register_algorithm("Bad-Name", _Renamed)
    with pytest.raises(TypeError, match="must be a metarl.MetaLearner subclass"):
        metarl.register_algorithm("not_a_learner", dict)
    with pytest.raises(ValueError, match="registered as 'wrong_name'"):
        metarl.register_algorithm("wrong_name", _Renamed)
    with pytest.raises(ValueError, match="must be 'module:Class'"):
        metarl.register_algorithm("lazy", "no_colon_here")
    with pytest.raises(TypeError, match="does not implement"):
        metarl.register_algorithm("abstract", type("Abstract", (metarl.MetaLearner,), {}))
    assert "wrong_name" not in metarl.algorithm_names()


def test_unknown_and_unimportable_names_say_what_is_registered():
    with pytest.raises(metarl.UnknownAlgorithmError, match="Did you mean 'maml_trpo'"):
        metarl.learner_class("maml-trpo")
    metarl.register_algorithm("missing_module", "no_such_module_xyz:Learner")
    try:
        with pytest.raises(ImportError, match="could not load algorithm 'missing_module'"):
            metarl.learner_class("missing_module")
    finally:
        metarl.unregister_algorithm("missing_module")


def test_cli_train_names_the_unknown_algorithm(tmp_path, capsys):
    from metarl.cli import main

    config = tmp_path / "x.yaml"
    config.write_text(CONFIG.replace("joint_vpg", "reptil"))
    assert main(["train", str(config), "--run-dir", str(tmp_path / "run")]) == 2
    assert "unknown algorithm 'reptil'. Did you mean 'reptile'?" in capsys.readouterr().err


def test_bundled_learners_carry_their_display_names():
    assert metarl.learner_class("maml_trpo").display_name == "MAML-TRPO"
    assert metarl.learner_class("reptile").display_name == "Reptile"
