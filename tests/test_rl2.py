"""RL²: the recurrent policy's two forwards agree; the sampler carries each slot's hidden
state, previous action and reward and the done flag exactly where it should (across the
episodes of a trial, not between trials, not past an episode's end); an evaluation's step k is
the k-th episode of the trials; learning to adapt on Navigation2D; resume; the refusals."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import metarl
from metarl import seeds
from metarl.algos.policy_gradient import gaussian_log_prob
from metarl.algos.rl2 import RL2, RL2Config, pack_trials
from metarl.evaluation.plot import plot_reports
from metarl.policies import GaussianGRUPolicy
from metarl.sampling import RecurrentState, Sampler
from tests.test_maml_trpo import flat_params


def tiny_config(**changes) -> RL2Config:
    values = dict(
        family="Navigation2D-v0",
        meta_batch_size=3,
        fast_batch_size=2,
        trial_episodes=2,
        hidden_size=8,
        num_workers=0,
        checkpoint_every=2,
        ppo_minibatches=2,
        ppo_epochs=2,
    )
    return RL2Config(**{**values, **changes})


def near_goals(family):
    """Goals on or near the start, which a random walk reaches: episodes end early, at
    different steps."""
    return [family.make_task(goal=goal) for goal in ((0.0, 0.0), (0.1, -0.1), (-0.2, 0.1))]


def test_the_step_forward_is_the_sequence_forward():
    """acting_step (the sampler's, per step, parameters stacked per task) computes what
    torch.nn.GRU computes over the whole sequence (training's)."""
    torch.manual_seed(0)
    policy = GaussianGRUPolicy(5, 2, hidden_size=8)
    tasks, episodes, steps = 3, 4, 6
    obs = torch.randn(tasks, episodes, steps, 5)
    prev_action, prev_reward = (
        torch.randn(tasks, episodes, steps, 2),
        torch.randn(tasks, episodes, steps),
    )
    done = (torch.rand(tasks, episodes, steps) < 0.2).float()
    inputs = policy.inputs(obs, prev_action, prev_reward, done).reshape(tasks * episodes, steps, -1)
    means, log_std, last = policy(inputs)
    stacked = {
        k: v.detach().unsqueeze(0).expand(tasks, *v.shape) for k, v in policy.params().items()
    }
    hidden, out = torch.zeros(tasks, episodes, 8), []
    for t in range(steps):
        mean, step_log_std, hidden = policy.acting_step(
            stacked, obs[:, :, t], hidden, prev_action[:, :, t], prev_reward[:, :, t], done[:, :, t]
        )
        out.append(mean)
    torch.testing.assert_close(torch.stack(out, 2).reshape(tasks * episodes, steps, 2), means)
    torch.testing.assert_close(hidden.reshape(tasks * episodes, 8), last)
    assert torch.equal(step_log_std[0], log_std)


def test_the_sampled_trials_are_what_training_replays():
    """Two episodes of a trial sampled one call at a time, the state carried between them
    (episodes end at the goal, at different steps): training's sequence forward over the
    packed trials (zero state at each trial's start, the previous action and reward as
    inputs, the done flag at the second episode's first step) gives the log-probability of
    every sampled action. So the sampler carried the hidden state across the episodes of a
    trial, froze it once a slot's episode had ended, and started each trial from zero."""
    family = metarl.make_family("Navigation2D-v0", horizon=40)
    torch.manual_seed(0)
    policy = GaussianGRUPolicy.for_family(family, hidden_size=8)
    with Sampler(family, num_workers=0, seed=3, policy=policy) as sampler:
        first = sampler.sample(near_goals(family), None, 5)
        second = sampler.sample(near_goals(family), None, 5, state=first.final_state)
    ended = torch.cat([b.lengths[b.terminated] for b in (first, second)])
    assert len(ended) > 3 and len(set(ended.tolist())) > 1 and (ended < 40).any()
    assert torch.equal(first.final_state.done, torch.ones(3, 5))
    data = pack_trials([first, second], 0.99, 1.0)
    inputs = data.inputs.reshape(15, 80, -1)
    with torch.no_grad():
        mean, log_std, _ = policy(inputs)
        log_prob = gaussian_log_prob(mean, log_std.expand_as(mean), data.actions.reshape(15, 80, 2))
    # The sampled log-probs, packed the same way (each slot's episodes back to back).
    offsets = first.lengths.reshape(15)
    for slot in range(15):
        task, episode = divmod(slot, 5)
        a, b = int(offsets[slot]), int(second.lengths[task, episode])
        torch.testing.assert_close(log_prob[slot, :a], first.log_probs[task, episode, :a])
        torch.testing.assert_close(log_prob[slot, a : a + b], second.log_probs[task, episode, :b])
        # the second episode's first input: its observation, episode 1's last action and
        # reward, and the done flag
        x = inputs[slot, a]
        assert torch.equal(x[2:4], first.actions[task, episode, a - 1])
        assert x[4] == first.rewards[task, episode, a - 1] and x[5] == 1.0
        assert (inputs[slot, :a, 5] == 0).all() and (inputs[slot, a + 1 : a + b, 5] == 0).all()


def test_a_trial_starts_from_zero_and_a_carried_state_changes_the_actions():
    family = metarl.make_family("Navigation2D-v0", horizon=10)
    tasks = family.sample_tasks(2, np.random.default_rng(0))
    torch.manual_seed(0)
    policy = GaussianGRUPolicy.for_family(family, hidden_size=8)
    with Sampler(family, num_workers=0, seed=0, policy=policy) as sampler:
        fresh = sampler.sample(tasks, None, 3, seed=5)
        zeros = RecurrentState.initial(2, 3, 8, 2)
        assert torch.equal(
            sampler.sample(tasks, None, 3, seed=5, state=zeros).actions, fresh.actions
        )
        carried = sampler.sample(tasks, None, 3, seed=5, state=fresh.final_state)
    # the same episodes (same seed), another state: other actions from the first step on
    assert torch.equal(carried.observations[:, :, 0], fresh.observations[:, :, 0])
    assert not torch.equal(carried.actions[:, :, 0], fresh.actions[:, :, 0])


def test_an_evaluations_step_k_is_the_kth_episode_of_the_trials():
    """metarl.evaluate on RL²: step k's returns are those of the k-th episode of trials
    sampled with evaluation step k's seed, each from the state the previous episode left; a
    new evaluation starts new trials (the same report again)."""
    learner = RL2(tiny_config())
    tasks = learner.family.test_tasks(3)
    report = metarl.evaluate(learner, tasks, steps=2, episodes=4, seed=7)
    state, expected = None, []
    for k in range(3):
        batch = learner.sampler.sample(
            tasks, learner.policy.params(), 4, seed=seeds.evaluation_step(7, k), state=state
        )
        state = batch.final_state
        expected.append(batch.returns())
    for k in range(3):
        got = torch.tensor([task_returns[k] for task_returns in report.returns])
        torch.testing.assert_close(got, expected[k], check_dtype=False)
    again = metarl.evaluate(learner, tasks, steps=2, episodes=4, seed=7)
    assert again.returns == report.returns
    # The report says so: one episode of experience per step, not the episodes per step.
    assert report.episodes_per_step == 1 and report.episodes == 4
    assert "4 trials, step k their k-th episode" in report.summary()
    learner.close()


def test_a_plot_says_which_curves_step_by_one_episode(tmp_path, monkeypatch):
    """The x axis of a panel with RL² beside a gradient learner names RL²'s steps apart."""
    import matplotlib.axes

    labels: list[str] = []
    original = matplotlib.axes.Axes.set_xlabel
    monkeypatch.setattr(
        matplotlib.axes.Axes,
        "set_xlabel",
        lambda ax, text, *a, **k: (labels.append(text), original(ax, text, *a, **k))[1],
    )
    learner = RL2(tiny_config())
    tasks = learner.family.test_tasks(2)
    memory = metarl.evaluate(learner, tasks, steps=1, episodes=2, seed=0)
    gradient = dataclasses.replace(memory, learner="maml_trpo", label="MAML-TRPO", info={})
    assert gradient.episodes_per_step == 2
    plot_reports([memory, gradient], tmp_path / "both.png")
    plot_reports([memory], tmp_path / "rl2.png")
    assert labels == [
        f"adaptation steps (2 episodes each; {memory.label}: one episode of a trial)",
        "adaptation steps (one episode of a trial each)",
    ]
    learner.close()


def test_rl2_learns_to_adapt_on_navigation2d():
    """A short seeded training (10 tasks x 10 trials of 2 episodes, 50 iterations, GRU of 32,
    Adam at 1e-2): within the first episode the policy already heads for the goal (better than
    staying at the start, -38 at best), and the second episode of a trial beats the first.

    The margins hold on seeds 0-4 (2026-12-07): over the last 5 iterations the first episodes
    return -13.6 to -18.6 and the second 2.5 to 4.7 more, from -89 to -182 untrained."""
    config = tiny_config(
        meta_batch_size=10,
        fast_batch_size=10,
        hidden_size=32,
        ppo_epochs=4,
        learning_rate=1e-2,
    )
    with RL2(config) as learner:
        history = [learner.meta_step() for _ in range(50)]
    assert all(s["update"] == "applied" for s in history)
    untrained = history[0]["return_before"]
    first = np.mean([s["return_before"] for s in history[-5:]])
    second = np.mean([s["return_after"] for s in history[-5:]])
    assert first > -25.0, first
    assert second > first + 1.5, (first, second)
    assert first > untrained + 40.0, (untrained, first)


def test_resume_is_bit_exact(tmp_path):
    straight = RL2(tiny_config(), run_dir=tmp_path / "straight").train(3)
    expected = flat_params(straight)
    straight.close()
    RL2(tiny_config(), run_dir=tmp_path / "resumed").train(1).close()
    resumed = metarl.load(tmp_path / "resumed")
    assert isinstance(resumed, RL2) and isinstance(resumed.policy, GaussianGRUPolicy)
    resumed.train(2)
    assert torch.equal(flat_params(resumed), expected)
    resumed.close()


def test_what_needs_adapted_parameters_is_refused_with_the_reason(tmp_path, capsys):
    from metarl.cli import main
    from metarl.sb3_bridge import export_sb3

    run = tmp_path / "run"
    learner = RL2(tiny_config(), run_dir=run).train(1)
    with pytest.raises(ValueError, match="hidden state"):
        learner.adapt(learner.family.test_tasks(1)[0], episodes=2)
    with pytest.raises(ValueError, match="recurrent"):
        export_sb3(learner, tmp_path / "model.zip")
    learner.close()
    assert (
        main(
            ["evaluate", str(run), "--num-tasks", "2", "--episodes", "2", "--video", str(tmp_path)]
        )
        == 2
    )
    assert "hidden state" in capsys.readouterr().err
    assert (
        main(["evaluate", str(run), "--num-tasks", "2", "--steps", "1", "--step-sizes", "0.1"]) == 2
    )
    assert "step size" in capsys.readouterr().err


def test_a_checkpoint_with_other_gru_sizes_than_its_config_is_refused(tmp_path):
    """Checked before the learner is built: a config edited to a huge hidden_size must not
    allocate it."""
    from metarl.checkpoint import CheckpointError, load_checkpoint, save_checkpoint

    run = tmp_path / "run"
    RL2(tiny_config(), run_dir=run).train(1).close()
    path = run / "checkpoints" / "iter_000001.safetensors"
    tensors, meta = load_checkpoint(path)
    meta["config"]["hidden_size"] = 4096
    kept = {k: v for k, v in meta.items() if k not in ("format", "version")}
    save_checkpoint(path, tensors, kept)
    with pytest.raises(CheckpointError, match="hidden_size 4096"):
        metarl.load(path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"trial_episodes": 0}, "trial_episodes must be >= 1"),
        ({"ppo_minibatches": 7}, "ppo_minibatches must be between 1 and"),
        ({"ppo_clip": 0.0}, "ppo_clip must be in"),
        ({"max_grad_norm": -1.0}, "max_grad_norm must be a finite number > 0"),
        ({"learning_rate": float("inf")}, "learning_rate must be a finite number > 0"),
    ],
)
def test_bad_settings_are_named(change, message):
    with pytest.raises(ValueError, match=message):
        tiny_config(**change)


def test_a_state_that_does_not_fit_the_batch_is_refused():
    family = metarl.make_family("Navigation2D-v0", horizon=5)
    tasks = family.sample_tasks(2, np.random.default_rng(0))
    with Sampler(family, num_workers=0, policy=GaussianGRUPolicy.for_family(family, 8)) as gru:
        with pytest.raises(ValueError, match=r"state.hidden must be a tensor of shape \(2, 3, 8\)"):
            gru.sample(tasks, None, 3, state=RecurrentState.initial(2, 4, 8, 2))
        bad = RecurrentState.initial(2, 3, 8, 2)
        bad.prev_reward[0, 0] = float("nan")
        with pytest.raises(ValueError, match="prev_reward contains NaN"):
            gru.sample(tasks, None, 3, state=bad)
    with (
        Sampler(family, num_workers=0) as mlp,
        pytest.raises(ValueError, match="state is for a recurrent policy"),
    ):
        mlp.sample(tasks, None, 3, state=RecurrentState.initial(2, 3, 8, 2))


def test_metarl_train_runs_rl2_from_a_config_file_and_the_trial_is_in_the_log(tmp_path):
    import csv

    from metarl.cli import main

    config = tmp_path / "rl2.yaml"
    config.write_text(
        "algorithm: rl2\nfamily: Navigation2D-v0\nmeta_batch_size: 3\nfast_batch_size: 2\n"
        "trial_episodes: 3\nhidden_size: 8\nppo_minibatches: 2\nnum_workers: 0\niterations: 2\n"
    )
    assert main(["train", str(config), "--run-dir", str(tmp_path / "run")]) == 0
    with open(tmp_path / "run" / "progress.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2
    for column in ("return_before", "return_after_step_1", "return_after"):
        assert rows[-1][column] != ""
    assert "rl2" in metarl.algorithm_names()
