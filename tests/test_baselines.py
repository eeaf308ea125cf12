"""Baselines: each runs on Navigation2D at a tiny budget into the evaluation's report; each is
what it says (random-init is the run's own starting point adapted by its inner procedure,
pretrained carries PPO's actor, ppo-scratch gets the adaptation budget, the oracle sees the
task); the CLI; bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import metarl
from metarl.baselines import BASELINES, baseline_learner, run_baseline
from metarl.baselines.envs import TaskEnv, run_episodes
from metarl.baselines.ppo import ppo_from_scratch_returns, pretrain_ppo
from metarl.cli import main
from metarl.policies import GaussianMLPPolicy
from metarl.sb3_bridge import params_from_sb3

TINY_PPO = {"n_steps": 8, "batch_size": 64, "n_epochs": 2}  # per env; 64 envs pre-train


def tiny_run(tmp_path, algorithm: str = "reptile"):
    """A saved run (one iteration) with a small policy, for ``like=``."""
    config = tmp_path / "config.yaml"
    config.write_text(
        f"algorithm: {algorithm}\nfamily: Navigation2D-v0\nmeta_batch_size: 2\n"
        "fast_batch_size: 2\nhidden_sizes: [8]\nnum_workers: 0\niterations: 1\nseed: 4\n"
        + ("ppo_minibatches: 1\n" if algorithm == "reptile" else "")
    )
    assert main(["train", str(config), "--run-dir", str(tmp_path / "run")]) == 0
    return tmp_path / "run"


@pytest.mark.parametrize("name", BASELINES)
def test_every_baseline_gives_a_report_at_a_tiny_budget(name):
    with baseline_learner(config=None, family="Navigation2D-v0") as learner:
        report = run_baseline(
            name, learner, "test", steps=1, episodes=3, num_tasks=2, timesteps=512,
            ppo_kwargs=TINY_PPO,
        )  # fmt: skip
    assert report.learner == name and report.family == "Navigation2D-v0"
    assert report.steps == [0, 1] and report.num_tasks == 2
    assert report.tasks == tuple(t.to_dict() for t in learner.family.test_tasks(2))
    for per_step in report.returns:
        for episodes in per_step:
            assert len(episodes) >= 3 and all(np.isfinite(r) for r in episodes)
    assert all(np.isfinite(report.mean_return))


def test_random_init_is_the_runs_starting_point_adapted_by_its_inner_loop(tmp_path):
    run = tiny_run(tmp_path)
    with baseline_learner(like=run) as learner:
        assert learner.algorithm == "reptile" and learner.iteration == 0
        report = run_baseline("random-init", learner, "test", steps=1, episodes=2, num_tasks=2)
        # The same as evaluating an untrained learner of the run's own config.
        config = metarl.load(run).config
        with metarl.Reptile(config) as fresh:
            expected = metarl.evaluate(fresh, "test", steps=1, episodes=2, num_tasks=2)
            for p, q in zip(fresh.policy.parameters(), learner.policy.parameters(), strict=True):
                assert torch.equal(p, q)
    assert report.returns == expected.returns
    assert report.info["inner_procedure"] == "reptile"
    assert report.label == "random init (Reptile adaptation)"


def test_pretrained_adapts_the_policy_ppo_trained_on_the_distribution():
    with baseline_learner(family="Navigation2D-v0") as learner:
        model = pretrain_ppo(learner.family, learner.config, 512, seed=0, ppo_kwargs=TINY_PPO)
        ppo_actor = params_from_sb3(model)
        initial = {k: v.detach().clone() for k, v in learner.policy.params().items()}
        run_baseline(
            "pretrained", learner, "test", steps=1, episodes=2, num_tasks=2, timesteps=512,
            ppo_kwargs=TINY_PPO,
        )  # fmt: skip
        for name, value in learner.policy.params().items():
            assert torch.equal(value, ppo_actor[name]), name  # same seed: the same PPO
            assert not torch.equal(value, initial[name]), name


def test_ppo_from_scratch_spends_the_adaptation_budget():
    family = metarl.make_family("HalfCheetahVel-v0", horizon=10)  # no early termination
    config = metarl.MAMLTRPOConfig(family="HalfCheetahVel-v0", hidden_sizes=(8,))
    returns = ppo_from_scratch_returns(family, config, family.test_tasks(1)[0], 2, 3, seed=0)
    assert [len(episodes) for episodes in returns] == [3, 3, 3]  # one rollout per step
    assert returns[0] != returns[1]


def test_ppo_fine_tuning_starts_from_the_actor_it_is_given():
    """With an all but deterministic actor that does nothing (zero weights, log std -20),
    the episodes of the first rollout are all the same; a fresh actor's are not."""
    family = metarl.make_family("Navigation2D-v0")
    config = metarl.MAMLTRPOConfig(family="Navigation2D-v0", hidden_sizes=(8,))
    task = family.test_tasks(1)[0]
    policy = GaussianMLPPolicy(2, 2, (8,))
    still = {k: torch.zeros_like(v) for k, v in policy.params().items()}
    still["log_std"] = torch.full_like(still["log_std"], -20.0)
    tuned = ppo_from_scratch_returns(family, config, task, 1, 3, seed=0, initial_actor=still)
    fresh = ppo_from_scratch_returns(family, config, task, 1, 3, seed=0)
    assert np.ptp(tuned[0]) < 1e-3 < 0.1 < np.ptp(fresh[0])
    assert tuned[1] != tuned[0]  # and then PPO fine-tunes it


def test_pretrained_finetune_fine_tunes_a_saved_pretrained_policy(tmp_path, capsys):
    """``pretrained-finetune --policy FILE`` fine-tunes the pretrained policy with PPO on each
    task (no training, nothing saved); it takes a pretrained policy, not an oracle's."""
    args = ["--family", "Navigation2D-v0", "--num-tasks", "2", "--steps", "1", "--episodes", "2"]
    pretrained = tmp_path / "pretrained.json"
    assert (
        main(["baseline", "pretrained", *args, "--timesteps", "600", "--out", str(pretrained)]) == 0
    )
    saved = pretrained.with_suffix(".safetensors")
    out = tmp_path / "finetune.json"
    command = ["baseline", "pretrained-finetune", *args, "--policy", str(saved)]
    assert main([*command, "--out", str(out)]) == 0
    report = metarl.AdaptationReport.load(out)
    assert report.learner == "pretrained-finetune" and report.steps == [0, 1]
    assert report.info["policy"] == str(saved) and report.info["ppo_timesteps"] == 600
    assert report.label == "PPO pretrained, fine-tuned with PPO"
    assert not out.with_suffix(".safetensors").exists()
    oracle = tmp_path / "oracle.json"
    assert main(["baseline", "oracle", *args, "--timesteps", "600", "--out", str(oracle)]) == 0
    capsys.readouterr()
    assert main([*command[:-1], str(oracle.with_suffix(".safetensors"))]) == 2
    assert "holds no pretrained policy" in capsys.readouterr().err


def test_task_env_draws_a_task_per_episode_and_the_oracle_sees_it():
    family = metarl.make_family("Navigation2D-v0")
    env = TaskEnv(family, seed=0)
    seen = set()
    for _ in range(3):
        obs, _ = env.reset()
        seen.add(env.task)
        assert obs.shape == (2,)
    assert len(seen) == 3
    env.reset(seed=5)
    first = env.task
    env.reset(seed=5)
    assert env.task == first  # seeded resets draw the same task
    task = family.test_tasks(1)[0]
    oracle = TaskEnv(family, task, observe_task=True)
    obs, _ = oracle.reset(seed=0)
    assert oracle.observation_space.contains(obs)
    np.testing.assert_allclose(obs[2:], task.goal, rtol=1e-6)
    obs, *_ = oracle.step(np.zeros(2, dtype=np.float32))
    np.testing.assert_allclose(obs[2:], task.goal, rtol=1e-6)


def test_run_episodes_returns_each_episodes_return():
    family = metarl.make_family("HalfCheetahVel-v0", horizon=5)
    task = family.test_tasks(1)[0]
    envs = [family.make_env(task) for _ in range(2)]
    returns = run_episodes(envs, lambda obs: np.full((len(obs), 6), 0.3), [1, 2])
    for seed, total in zip([1, 2], returns, strict=True):  # replayed by hand
        env = family.make_env(task)
        env.reset(seed=seed)
        expected = sum(env.step(np.full(6, 0.3))[1] for _ in range(5))
        assert total == pytest.approx(expected, rel=1e-12)


def test_metarl_baseline_cli_and_bad_input(tmp_path, capsys):
    out = tmp_path / "random.json"
    args = ["baseline", "random-init", "--family", "Navigation2D-v0", "--num-tasks", "2"]
    assert main([*args, "--steps", "1", "--episodes", "2", "--out", str(out), "--label", "x"]) == 0
    assert "x on Navigation2D-v0" in capsys.readouterr().out
    data = json.loads(out.read_text())
    assert data["learner"] == "random-init" and len(data["tasks"]) == 2 and data["label"] == "x"
    with (
        pytest.raises(ValueError, match="unknown baseline 'finetune'"),
        baseline_learner(family="Navigation2D-v0") as learner,
    ):
        run_baseline("finetune", learner)
    with pytest.raises(ValueError, match="give exactly one of family"):
        baseline_learner()
    with pytest.raises(ValueError, match="give exactly one of family"):
        baseline_learner(family="Navigation2D-v0", config="x.yaml")


def test_pretrained_gets_the_runs_env_steps_by_default(tmp_path, capsys):
    """``metarl baseline pretrained --like RUN`` trains PPO for the run's own env steps."""
    run = tiny_run(tmp_path)
    steps = metarl.load(run).env_steps
    out = tmp_path / "pretrained.json"
    args = ["baseline", "pretrained", "--like", str(run), "--num-tasks", "2", "--steps", "1"]
    assert main([*args, "--episodes", "2", "--out", str(out)]) == 0
    assert f"PPO trains for {steps:,} env steps" in capsys.readouterr().out
    assert json.loads(out.read_text())["info"]["ppo_timesteps"] == steps > 0


@pytest.mark.parametrize("name", ["pretrained", "oracle"])
def test_a_saved_baseline_policy_reproduces_its_report(tmp_path, name, capsys):
    """The trained policy is saved beside the report (safetensors + JSON); ``metarl
    evaluate`` on it gives the same report, and ``--policy`` reuses it without training."""
    out = tmp_path / f"{name}.json"
    args = ["--num-tasks", "2", "--steps", "1", "--episodes", "2"]
    common = ["baseline", name, "--family", "Navigation2D-v0", *args, "--timesteps", "600"]
    assert main([*common, "--out", str(out)]) == 0
    saved = out.with_suffix(".safetensors")
    assert f"policy (metarl evaluate re-evaluates it): {saved}" in capsys.readouterr().out
    original = metarl.AdaptationReport.load(out)
    again = tmp_path / "again.json"
    assert main(["evaluate", str(saved), *args, "--out", str(again)]) == 0
    assert metarl.AdaptationReport.load(again).returns == original.returns
    reused = tmp_path / "reused.json"
    assert main([*common, "--policy", str(saved), "--out", str(reused)]) == 0
    assert metarl.AdaptationReport.load(reused).returns == original.returns
    assert not reused.with_suffix(".safetensors").exists()  # nothing trained, nothing saved
    other = "oracle" if name == "pretrained" else "pretrained"
    assert main(["baseline", other, "--family", "Navigation2D-v0", "--policy", str(saved)]) == 2
    assert f"holds no {other} policy" in capsys.readouterr().err


def test_a_long_pretraining_saves_its_state_and_resumes(tmp_path, monkeypatch):
    """Pre-training writes its state every PRETRAIN_CHECKPOINT_EVERY env steps; started again
    with the file there, it continues from it to the total asked for."""
    from metarl.baselines import ppo

    monkeypatch.setattr(ppo, "PRETRAIN_CHECKPOINT_EVERY", 1)  # after every rollout
    family = metarl.make_family("Navigation2D-v0")
    config = metarl.MAMLTRPOConfig(family="Navigation2D-v0", hidden_sizes=(8,))
    state = tmp_path / "pretrained.training.safetensors"
    rollout = 64 * TINY_PPO["n_steps"]
    first = pretrain_ppo(family, config, 2 * rollout, ppo_kwargs=TINY_PPO, progress=state)
    assert state.exists() and first.num_timesteps == 2 * rollout
    resumed_from = []
    original = ppo._resume_training

    def spy(model, path, record):
        done = original(model, path, record)
        saved = first.policy.state_dict()
        resumed_from.append(done)
        assert all(torch.equal(v, saved[k]) for k, v in model.policy.state_dict().items())
        return done

    monkeypatch.setattr(ppo, "_resume_training", spy)
    resumed = pretrain_ppo(family, config, 3 * rollout, ppo_kwargs=TINY_PPO, progress=state)
    assert resumed_from == [2 * rollout]  # it started from the saved state ...
    assert resumed.num_timesteps == 3 * rollout  # ... and trained one more rollout
    with pytest.raises(ValueError, match="other settings"):
        pretrain_ppo(family, config, 4 * rollout, seed=1, ppo_kwargs=TINY_PPO, progress=state)
    # run_baseline keeps the state beside the policy, and removes it once the policy is saved
    state.unlink()
    policy = tmp_path / "pretrained.safetensors"
    with baseline_learner(family="Navigation2D-v0") as learner:
        run_baseline(
            "pretrained", learner, "test", steps=0, episodes=1, num_tasks=1,
            timesteps=rollout, ppo_kwargs=TINY_PPO, save_policy=policy,
        )  # fmt: skip
    assert policy.exists() and not state.exists()
