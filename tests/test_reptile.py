"""Reptile for RL: the outer update's arithmetic, the inner loop's per-task independence, the
annealing schedule, bit-exact resume, and learning on Navigation2D."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import metarl
from metarl.algos.policy_gradient import TaskData
from metarl.algos.reptile import Reptile, ReptileConfig, meta_step_size, reptile_update
from metarl.runs import start_run


def tiny_config(**changes) -> ReptileConfig:
    values = dict(
        family="Navigation2D-v0",
        meta_batch_size=3,
        fast_batch_size=4,
        inner_steps=2,
        ppo_epochs=2,
        ppo_minibatches=2,
        num_workers=0,
        hidden_sizes=(8,),
        checkpoint_every=2,
        iterations=4,
    )
    return ReptileConfig(**{**values, **changes})


def flat_params(learner) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in learner.policy.parameters()])


# ---------------------------------------------------------------------------- outer update
def test_the_outer_update_by_hand():
    theta = {"w": torch.tensor([1.0, 2.0])}
    adapted = {"w": torch.tensor([[3.0, 2.0], [1.0, 6.0]])}  # mean (2, 4)
    for eps, expected in ((0.5, [1.5, 3.0]), (1.0, [2.0, 4.0]), (0.0, [1.0, 2.0])):
        assert reptile_update(theta, adapted, eps)["w"].tolist() == expected
    # The same through the learner, with no optimiser and with SGD on the pseudo-gradient.
    for outer in (None, "sgd"):
        learner = Reptile(tiny_config(outer_optimizer=outer))
        with torch.no_grad():
            for p in learner.policy.parameters():
                p.fill_(1.0)
        phi = {
            k: torch.stack([v * 0 + 3.0, v * 0 + 1.0]) for k, v in learner.policy.params().items()
        }
        learner._outer_update(phi, 0.5)  # mean phi = 2: theta = 1 + 0.5 * (2 - 1)
        assert torch.all(flat_params(learner) == 1.5), outer
        learner.close()


@pytest.mark.parametrize(
    "settings",
    [
        dict(inner_algorithm="ppo", inner_optimizer="adam"),
        dict(inner_algorithm="vpg", inner_optimizer="sgd", inner_lr=0.05),
    ],
)
def test_one_task_with_step_size_one_lands_on_the_inner_loops_result(settings):
    """With one task and eps = 1, the meta-step's new parameters are exactly the adapted
    parameters the inner loop gives for that task (``adapt``, same sampler stream)."""
    config = tiny_config(meta_batch_size=1, meta_step_size=1.0, sample_after=False, **settings)
    with Reptile(config) as trained, Reptile(config) as adapting:
        start = flat_params(trained).clone()
        trained.meta_step()
        (task,) = adapting.family.sample_tasks(1, adapting.task_rng)
        phi = adapting.adapt(task, config.fast_batch_size, config.inner_steps)
        expected = torch.cat([phi[k].reshape(-1) for k, _ in adapting.policy.named_parameters()])
        assert torch.equal(flat_params(trained), expected)
        assert not torch.equal(expected, start)


def test_the_inner_loop_adapts_each_task_as_if_alone():
    """Stacked tasks share one optimiser, yet each slice moves exactly as a separate
    optimiser on that task's loss alone would move it (Adam is elementwise)."""
    with Reptile(tiny_config(meta_batch_size=2)) as learner:
        tasks = learner.family.sample_tasks(2, learner.task_rng)
        theta = {k: v.detach() for k, v in learner.policy.params().items()}
        batch = learner.sampler.sample(tasks, theta, 4)
        data = TaskData.from_batch(batch, 0.99, 1.0)

        def run(rows: list[int]) -> dict[str, torch.Tensor]:
            adaptation = learner.adaptation([tasks[i] for i in rows], seed=0)
            part = TaskData(*(getattr(data, f)[rows] for f in TaskData.__dataclass_fields__))
            for episodes in (torch.tensor([0, 1]), torch.tensor([3, 2]), None):
                adaptation.update(part, batch.log_probs[rows], episodes)
            return {k: v.detach() for k, v in adaptation.params.items()}

        together = run([0, 1])
        for i in (0, 1):
            alone = run([i])
            for k in theta:
                torch.testing.assert_close(together[k][i], alone[k][0], rtol=1e-6, atol=1e-7)
        assert not torch.allclose(together["log_std"][0], together["log_std"][1])


# ---------------------------------------------------------------------------- schedule
def test_the_step_size_anneals_linearly_over_the_configs_iterations():
    config = tiny_config(iterations=4, meta_step_size=1.0, meta_step_size_final=0.2)
    values = [meta_step_size(config, i) for i in range(6)]
    np.testing.assert_allclose(values, [1.0, 0.8, 0.6, 0.4, 0.2, 0.2])
    with Reptile(config) as learner:
        learner.train(2)
        assert learner.last_stats["meta_step_size"] == pytest.approx(0.8)


# ---------------------------------------------------------------------------- checkpoints
@pytest.mark.parametrize("outer", [None, "adam"])
def test_resume_is_bit_exact(tmp_path, outer):
    """3 straight iterations equal 1, then load, then 2 more: the parameters, the sampler
    stream and (with Adam outside) the outer optimiser's moments."""
    config = tiny_config(outer_optimizer=outer, meta_step_size=0.05 if outer else 1.0)
    straight = Reptile(config, run_dir=tmp_path / "straight").train(3)
    straight.close()
    Reptile(config, run_dir=tmp_path / "resumed").train(1).close()
    resumed = metarl.load(tmp_path / "resumed")
    assert isinstance(resumed, Reptile) and resumed.iteration == 1
    resumed.train(2)
    assert torch.equal(flat_params(resumed), flat_params(straight))
    assert resumed.sampler.state_dict() == straight.sampler.state_dict()
    if outer:
        (a,), (b,) = (
            r._outer.state_dict()["state"][0]["exp_avg_sq"].reshape(1, -1)
            for r in (resumed, straight)
        )
        assert torch.equal(a, b) and a.abs().sum() > 0
    resumed.close()


def test_bad_settings_raise_naming_the_choices():
    with pytest.raises(ValueError, match=r"inner_algorithm must be one of \('ppo', 'vpg'\)"):
        tiny_config(inner_algorithm="trpo")
    with pytest.raises(ValueError, match="ppo_minibatches must be between 1 and fast_batch_size"):
        tiny_config(ppo_minibatches=5)
    with pytest.raises(ValueError, match="outer_optimizer"):
        tiny_config(outer_optimizer="rmsprop")


def test_metarl_train_runs_a_reptile_config(tmp_path, capsys):
    config = tmp_path / "reptile.yaml"
    config.write_text(
        "algorithm: reptile\nfamily: Navigation2D-v0\nmeta_batch_size: 2\nfast_batch_size: 2\n"
        "ppo_minibatches: 1\nhidden_sizes: [8]\nnum_workers: 0\niterations: 2\n"
        "sample_after: false\n"
    )
    learner = start_run(config, tmp_path / "run")
    learner.train(2).close()
    assert metarl.load(tmp_path / "run").iteration == 2
    from metarl.cli import main

    assert main(["train", str(config), "--run-dir", str(tmp_path / "cli")]) == 0
    # Three inner steps, no extra sampling after them: the returns of the three inner batches.
    out = capsys.readouterr().out
    assert "mean return before adaptation" in out and "after 2 steps" in out, out
    assert "after 3 steps" not in out, out


# ---------------------------------------------------------------------------- learning
def _adapted_return(learner: Reptile, tasks, episodes: int, steps: int) -> float:
    returns = []
    for task in tasks:
        phi = learner.adapt(task, episodes, steps)
        batch = learner.sampler.sample([task], [phi], episodes, seed=7)
        returns.append(float(batch.returns().mean()))
    return float(np.mean(returns))


def test_reptile_learns_an_initialisation_that_adapts_on_navigation2d():
    """After a short seeded training (10 tasks x 10 episodes, 2 PPO inner steps, 8
    iterations), adapting on held-out tasks with a budget of 2 x 10 episodes clearly beats
    adapting from the untrained initialisation with the same budget."""
    config = ReptileConfig(
        family="Navigation2D-v0",
        meta_batch_size=10,
        fast_batch_size=10,
        inner_steps=2,
        hidden_sizes=(32, 32),
        num_workers=0,
        iterations=8,
    )
    with Reptile(config) as untrained, Reptile(config) as learner:
        tasks = learner.family.test_tasks(5)
        learner.train(8)
        from_scratch = _adapted_return(untrained, tasks, 10, 2)
        meta_trained = _adapted_return(learner, tasks, 10, 2)
    assert meta_trained > from_scratch + 100.0, (from_scratch, meta_trained)
