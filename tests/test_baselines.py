"""Baselines: each runs on Navigation2D at a tiny budget into the evaluation's report, through
the same evaluation loop as a meta-learner; each is what it says (random-init is the run's own
starting point adapted by its inner procedure, pretrained carries PPO's actor, ppo-scratch
takes one PPO update per step on the episodes sampled, the oracle sees the task); PPO's
buffer and advantages by hand; the CLI; bad input."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

import metarl
from metarl.adaptation import Description
from metarl.algos.advantages import gae
from metarl.baselines import BASELINES, compared_learner, oracle_policy, run_baseline
from metarl.baselines.adaptables import OracleBaseline, PPOBaseline, fold_task_features
from metarl.baselines.envs import TaskEnv
from metarl.baselines.ppo import ppo_update, pretrain_ppo, rollout_buffer
from metarl.checkpoint import load_checkpoint, section
from metarl.cli import main
from metarl.policies import GaussianMLPPolicy
from metarl.sb3_bridge import params_from_sb3, sb3_ppo

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
    compared = compared_learner(config=None, family="Navigation2D-v0")
    report = run_baseline(
        name, compared, "test", steps=1, episodes=3, num_tasks=2, timesteps=512,
        ppo_kwargs=TINY_PPO,
    )  # fmt: skip
    family = metarl.make_family("Navigation2D-v0")
    assert report.learner == name and report.family == "Navigation2D-v0"
    assert report.steps == [0, 1] and report.num_tasks == 2
    assert report.tasks == tuple(t.to_dict() for t in family.test_tasks(2))
    for per_step in report.returns:
        for episodes in per_step:
            assert len(episodes) == 3 and all(np.isfinite(r) for r in episodes)
    assert all(np.isfinite(report.mean_return))


def test_random_init_is_the_runs_starting_point_adapted_by_its_inner_loop(tmp_path):
    run = tiny_run(tmp_path)
    compared = compared_learner(like=run)
    assert compared.algorithm == "reptile" and compared.source == str(run)
    report = run_baseline("random-init", compared, "test", steps=1, episodes=2, num_tasks=2)
    # The same as evaluating an untrained learner of the run's own config.
    with metarl.Reptile(metarl.load(run).config) as fresh:
        expected = metarl.evaluate(fresh, "test", steps=1, episodes=2, num_tasks=2)
        with compared.learner() as learner:
            assert learner.iteration == 0
            for p, q in zip(fresh.policy.parameters(), learner.policy.parameters(), strict=True):
                assert torch.equal(p, q)
    assert report.returns == expected.returns and report.info["iteration"] == 0
    assert report.info["inner_procedure"] == "reptile"
    assert report.label == "random init (Reptile adaptation)"


def test_pretrained_adapts_the_policy_ppo_trained_on_the_distribution(tmp_path):
    compared = compared_learner(family="Navigation2D-v0")
    family = metarl.make_family("Navigation2D-v0")
    model = pretrain_ppo(family, compared.config, 512, seed=0, ppo_kwargs=TINY_PPO)
    ppo_actor = params_from_sb3(model)
    saved = tmp_path / "pretrained.safetensors"
    report = run_baseline(
        "pretrained", compared, "test", steps=1, episodes=2, num_tasks=2, timesteps=512,
        ppo_kwargs=TINY_PPO, save_policy=saved,
    )  # fmt: skip
    policy = section(load_checkpoint(saved)[0], "policy")
    with compared.learner() as fresh:
        for name, value in policy.items():
            assert torch.equal(value, ppo_actor[name]), name  # same seed: the same PPO
            assert not torch.equal(value, fresh.policy.params()[name]), name
        # ... adapted by the learner's inner procedure, as metarl.evaluate adapts a learner
        fresh.policy.load_state_dict(policy)
        expected = metarl.evaluate(fresh, "test", steps=1, episodes=2, num_tasks=2)
    assert report.returns == expected.returns
    assert report.info["inner_procedure"] == "maml_trpo" and report.info["env_steps"] == 512


def navigation_ppo(initial_actor=None, **kwargs) -> PPOBaseline:
    compared = compared_learner(family="Navigation2D-v0")
    description = Description("ppo", "PPO")
    return PPOBaseline(
        metarl.make_family("Navigation2D-v0"), compared.config, description, initial_actor, kwargs
    )


def test_ppo_from_scratch_samples_as_a_learner_and_updates_once_per_step():
    """Step 0 of PPO fine-tuning a learner's own policy is the learner's step 0 (the same
    sampler, seeds and episodes); each step is one PPO update on the episodes just sampled,
    a function of the seed alone, which leaves the caller's random generators as they were."""
    compared = compared_learner(family="Navigation2D-v0")
    with compared.learner() as learner:
        learned = metarl.evaluate(learner, "test", steps=1, episodes=3, num_tasks=2, seed=3)
        actor = {k: v.detach().clone() for k, v in learner.policy.params().items()}
    with navigation_ppo(actor) as ppo:
        state = np.random.get_state()[1].copy(), torch.random.get_rng_state().clone()
        tuned = metarl.evaluate(ppo, "test", steps=2, episodes=3, num_tasks=2, seed=3)
        assert np.array_equal(np.random.get_state()[1], state[0])
        assert torch.equal(torch.random.get_rng_state(), state[1])
        again = metarl.evaluate(ppo, "test", steps=2, episodes=3, num_tasks=2, seed=3)
        adaptation = ppo.adaptation(learner.family.test_tasks(2), seed=3)
    assert [r[0] for r in tuned.returns] == [r[0] for r in learned.returns]
    assert tuned.returns == again.returns  # repeatable
    assert tuned.returns[0][1] != tuned.returns[0][0] != tuned.returns[0][2]  # it learns
    for name, value in actor.items():  # both tasks start from the actor given
        assert torch.equal(adaptation.params[name], torch.stack([value, value])), name
    assert [m.seed for m in adaptation.models] == [3, 4]  # seeds.finetune_task
    with navigation_ppo() as scratch:
        fresh = scratch.adaptation(learner.family.test_tasks(1), seed=3).params
    assert not torch.equal(fresh["mean_net.0.weight"][0], actor["mean_net.0.weight"])


def test_ppo_update_is_one_sb3_update_on_the_episodes():
    """The update changes the actor as SB3's train() does on that buffer: its epochs and
    minibatches (n_updates), nothing when every episode was unstable."""
    family = metarl.make_family("HalfCheetahVel-v0", horizon=10)
    with metarl.Sampler(family, seed=0) as sampler:
        batch = sampler.sample(family.test_tasks(1), None, 4)
    config = metarl.MAMLTRPOConfig(family="HalfCheetahVel-v0", hidden_sizes=(8,))
    model = sb3_ppo(family, (8,), "tanh", config.init_std, n_steps=10, batch_size=10)
    before = params_from_sb3(model)
    ppo_update(model, batch)
    assert model._n_updates == model.n_epochs  # 4 minibatches per epoch, 10 epochs
    after = params_from_sb3(model)
    assert not torch.equal(before["mean_net.0.weight"], after["mean_net.0.weight"])
    unstable = dataclasses.replace(batch, sim_unstable=torch.ones_like(batch.sim_unstable))
    assert rollout_buffer(model, unstable) is None
    ppo_update(model, unstable)
    assert model._n_updates == model.n_epochs
    with pytest.raises(ValueError, match="one task"):
        rollout_buffer(model, batch.select([0, 0]))


def test_the_rollout_buffer_holds_the_episodes_and_gae_by_hand():
    """The buffer holds every valid step, episode after episode; its advantages are GAE with
    V zero after a terminal step and bootstrapped by V of the last observation at the
    horizon: metarl's own GAE on the same values, with the bootstrap added by hand."""
    family = metarl.make_family("HopperRandParams-v0", horizon=30)
    with metarl.Sampler(family, seed=1) as sampler:
        batch = sampler.sample(family.test_tasks(1), None, 6)
    assert batch.terminated.any() and not batch.terminated.all()  # both kinds of ending
    model = sb3_ppo(family, (8,), "tanh", 1.0, n_steps=30, batch_size=30)
    buffer = rollout_buffer(model, batch)
    lengths = batch.lengths[0].tolist()
    assert buffer.buffer_size == sum(lengths)
    obs = torch.as_tensor(buffer.observations[:, 0])
    with torch.no_grad():
        values = model.policy.predict_values(batch.observations[0].flatten(0, 1)).view(6, 30)
        _, log_probs, _ = model.policy.evaluate_actions(
            batch.observations[0].flatten(0, 1), batch.actions[0].flatten(0, 1)
        )
    rewards = batch.rewards[0].clone().double()
    for e, n in enumerate(lengths):
        if not batch.terminated[0, e]:
            rewards[e, n - 1] += model.gamma * values[e, n - 1]
    expected = gae(rewards, values.double(), batch.mask[0].double(), model.gamma, model.gae_lambda)
    valid = batch.mask[0].bool()
    assert torch.equal(obs, batch.observations[0][valid])
    np.testing.assert_allclose(
        buffer.advantages[:, 0], expected[valid].numpy(), rtol=1e-4, atol=1e-4
    )
    np.testing.assert_allclose(
        buffer.returns[:, 0], (expected + values)[valid].numpy(), rtol=1e-4, atol=1e-4
    )
    np.testing.assert_allclose(
        buffer.log_probs[:, 0], log_probs.view(6, 30)[valid].numpy(), rtol=1e-5, atol=1e-5
    )
    starts = np.cumsum([0, *lengths[:-1]])
    assert np.flatnonzero(buffer.episode_starts[:, 0]).tolist() == starts.tolist()


def test_the_oracle_folds_the_task_into_its_first_layer():
    """The oracle's policy of ``[obs, features]`` acts as the folded policy of ``obs`` (the
    sampler runs it as a plain policy), and it does not adapt."""
    family = metarl.make_family("HalfCheetahRandParams-v0")
    config = metarl.MAMLTRPOConfig(family=family.id, hidden_sizes=(8, 8))
    oracle = oracle_policy(family, config)
    task = family.test_tasks(1)[0]
    features = torch.as_tensor(family.task_features(task))
    obs = torch.randn(5, oracle.obs_dim - features.numel())
    folded = fold_task_features(oracle.params(), features, obs.shape[1])
    plain = GaussianMLPPolicy(obs.shape[1], oracle.act_dim, (8, 8))
    mean, _ = torch.func.functional_call(plain, folded, (obs,))
    expected, _ = oracle(torch.cat([obs, features.expand(5, -1)], dim=1))
    torch.testing.assert_close(mean, expected)
    params = {k: v.detach() for k, v in oracle.params().items()}
    with OracleBaseline(family, config, Description("oracle", "oracle"), params) as baseline:
        adaptation = baseline.adaptation(family.test_tasks(2))
        before = {k: v.clone() for k, v in adaptation.params.items()}
        adaptation.step(None)
        assert all(torch.equal(before[k], v) for k, v in adaptation.params.items())
    with pytest.raises(ValueError, match="first layer takes"):
        fold_task_features(params, features[:-1], obs.shape[1])


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


def test_metarl_baseline_cli_and_bad_input(tmp_path, capsys):
    out = tmp_path / "random.json"
    args = ["baseline", "random-init", "--family", "Navigation2D-v0", "--num-tasks", "2"]
    assert main([*args, "--steps", "1", "--episodes", "2", "--out", str(out), "--label", "x"]) == 0
    assert "x on Navigation2D-v0" in capsys.readouterr().out
    data = json.loads(out.read_text())
    assert data["learner"] == "random-init" and len(data["tasks"]) == 2 and data["label"] == "x"
    with pytest.raises(ValueError, match="unknown baseline 'finetune'"):
        run_baseline("finetune", compared_learner(family="Navigation2D-v0"))
    with pytest.raises(ValueError, match="give exactly one of family"):
        compared_learner()
    with pytest.raises(ValueError, match="give exactly one of family"):
        compared_learner(family="Navigation2D-v0", config="x.yaml")


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
    run_baseline(
        "pretrained", compared_learner(family="Navigation2D-v0"), "test", steps=0, episodes=1,
        num_tasks=1, timesteps=rollout, ppo_kwargs=TINY_PPO, save_policy=policy,
    )  # fmt: skip
    assert policy.exists() and not state.exists()
