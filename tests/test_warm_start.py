"""``init_policy``: meta-training that starts from a saved policy (a warm start): it starts
from exactly that policy and counts its env steps; a resumed or loaded run no longer needs
the file; a random-init baseline of such a run stays random; bad files get clear errors."""

from __future__ import annotations

import pytest
import torch

import metarl
from metarl.baselines import compared_learner, run_baseline
from metarl.checkpoint import CheckpointError
from metarl.cli import main
from tests.test_train_cli import TINY  # a two-iteration MAML-TRPO run on Navigation2D


def _config(**changes) -> metarl.MAMLTRPOConfig:
    values = dict(
        family="Navigation2D-v0", meta_batch_size=2, fast_batch_size=2, hidden_sizes=(8,),
        num_workers=0,
    )  # fmt: skip
    return metarl.MAMLTRPOConfig(**{**values, **changes})


@pytest.fixture
def source(tmp_path):
    """A checkpoint of a one-iteration run, seed 7, to start from."""
    with metarl.MAMLTRPO(_config(seed=7)) as learner:
        learner.train(1)
        path = learner.save(tmp_path / "source.safetensors")
        params = {k: v.clone() for k, v in learner.policy.state_dict().items()}
        return path, params, learner.env_steps


def test_a_warm_start_begins_at_the_saved_policy_and_counts_its_env_steps(source):
    path, params, env_steps = source
    with metarl.MAMLTRPO(_config(init_policy=str(path))) as learner:
        for name, value in learner.policy.state_dict().items():
            assert torch.equal(value, params[name]), name
        assert learner.env_steps == env_steps > 0 and learner.iteration == 0
        learner.train(1)
        assert learner.env_steps == 2 * env_steps  # the same batch size, one more iteration
    with metarl.MAMLTRPO(_config()) as fresh:  # without it: the seed's own initialisation
        fresh_params = fresh.policy.state_dict()
        assert not torch.equal(fresh_params["mean_net.0.weight"], params["mean_net.0.weight"])
        assert fresh.env_steps == 0


def test_a_warm_started_run_resumes_and_loads_without_the_file(tmp_path, source, capsys):
    path, _, env_steps = source
    config, run = tmp_path / "warm.yaml", tmp_path / "run"
    config.write_text(TINY)
    args = ["train", str(config), "--run-dir", str(run), "--set", f"init_policy={path}"]
    assert main([*args, "--iterations", "1"]) == 0
    trained = metarl.load(run)
    saved = {k: v.clone() for k, v in trained.policy.state_dict().items()}
    assert trained.env_steps == 2 * env_steps and trained.config.init_policy == str(path)
    trained.close()
    path.unlink()  # the checkpoint holds the whole state: the file is not needed again
    with metarl.load(run) as again:
        assert all(torch.equal(v, saved[k]) for k, v in again.policy.state_dict().items())
    assert main([*args, "--resume", "--iterations", "2"]) == 0
    assert "iteration 2:" in capsys.readouterr().out
    # Its random init is the config's fresh policy, not the warm start.
    compared = compared_learner(like=run)
    with compared.learner() as learner:
        assert learner.config.init_policy is None and learner.env_steps == 0
    report = run_baseline("random-init", compared, "test", steps=1, episodes=2, num_tasks=2)
    assert report.info["env_steps"] == 0


def test_a_saved_pretrained_policy_is_a_warm_start(tmp_path):
    """The policy ``metarl baseline pretrained`` saves starts a meta-learner (of the same
    family and architecture), with PPO's env steps counted."""
    common = ["--family", "Navigation2D-v0", "--num-tasks", "2", "--steps", "1"]
    out = tmp_path / "pretrained.json"
    assert main(["baseline", "pretrained", *common, "--timesteps", "600", "--out", str(out)]) == 0
    saved = out.with_suffix(".safetensors")
    pretrained = metarl.load(saved)
    with (
        pretrained,
        metarl.MAMLTRPO(_config(hidden_sizes=(64, 64), init_policy=str(saved))) as learner,
    ):
        expected = pretrained.policy.state_dict()
        assert all(torch.equal(v, expected[k]) for k, v in learner.policy.state_dict().items())
        assert learner.env_steps == pretrained.env_steps > 0


def test_bad_init_policies_get_clear_errors(tmp_path, source):
    path, _, _ = source
    with pytest.raises(FileNotFoundError, match="init_policy .* does not exist"):
        metarl.MAMLTRPO(_config(init_policy=str(tmp_path / "missing.safetensors")))
    with pytest.raises(ValueError, match="other shapes"):
        metarl.MAMLTRPO(_config(hidden_sizes=(16,), init_policy=str(path)))
    other = tmp_path / "other.safetensors"
    with metarl.MAMLTRPO(_config(family="HalfCheetahVel-v0")) as learner:
        learner.save(other)
    with pytest.raises(ValueError, match="holds a policy of HalfCheetahVel-v0"):
        metarl.MAMLTRPO(_config(init_policy=str(other)))
    not_a_checkpoint = tmp_path / "junk.safetensors"
    not_a_checkpoint.write_bytes(b"not safetensors")
    with pytest.raises(CheckpointError):
        metarl.MAMLTRPO(_config(init_policy=str(not_a_checkpoint)))
