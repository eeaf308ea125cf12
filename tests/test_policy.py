"""GaussianMLPPolicy: explicit parameter dicts, per-task batching, gradients, bad input."""

from __future__ import annotations

import math

import pytest
import torch

from metarl.policies import GaussianMLPPolicy


@pytest.fixture
def policy() -> GaussianMLPPolicy:
    torch.manual_seed(0)
    return GaussianMLPPolicy(obs_dim=5, act_dim=3, hidden_sizes=(16, 16), init_std=0.5)


def test_shapes_and_initial_std(policy):
    obs = torch.randn(7, 4, 5)
    dist = policy.distribution(obs)
    assert dist.mean.shape == (7, 4, 3) and dist.event_shape == (3,)
    torch.testing.assert_close(dist.stddev, torch.full((7, 4, 3), 0.5))
    assert dist.log_prob(torch.zeros(7, 4, 3)).shape == (7, 4)
    assert policy.act(obs).shape == (7, 4, 3)
    assert set(policy.params()) == {
        "mean_net.0.weight",
        "mean_net.0.bias",
        "mean_net.2.weight",
        "mean_net.2.bias",
        "mean_net.4.weight",
        "mean_net.4.bias",
        "log_std",
    }


def test_explicit_params_equal_module_params_and_replace_them(policy):
    obs = torch.randn(10, 5)
    own = policy.distribution(obs)
    same = policy.distribution(obs, policy.params())
    torch.testing.assert_close(own.mean, same.mean, rtol=0, atol=0)
    shifted = {k: v + 1.0 for k, v in policy.params().items()}
    other = policy.distribution(obs, shifted)
    assert not torch.allclose(other.mean, own.mean)
    torch.testing.assert_close(other.stddev, torch.full((10, 3), 0.5 * math.e))


@pytest.mark.parametrize("activation", ["tanh", "relu", "gelu"])
def test_acting_forward_is_the_policy_with_those_params(activation):
    """The sampler's forward against functional_call (one dict) and vmap (one dict per
    task), with other parameters than the module's own, in every activation: the same to
    the bit but for NumPy's tanh (within float32 rounding)."""
    torch.manual_seed(1)
    policy = GaussianMLPPolicy(obs_dim=7, act_dim=2, hidden_sizes=(32, 9), activation=activation)
    params = {k: v.detach() + 0.3 * torch.randn_like(v) for k, v in policy.params().items()}
    obs = torch.randn(40, 20, 7)
    mean, log_std = policy.acting_forward(params, obs)
    expected_mean, expected_log_std = torch.func.functional_call(policy, params, (obs,))
    assert torch.equal(log_std, expected_log_std)
    assert not torch.equal(mean, policy(obs)[0])  # the given params, not the module's
    per_task = [{k: v + 0.1 * i for k, v in params.items()} for i in range(40)]
    stacked = policy.stack_params(per_task)
    stacked_mean, stacked_log_std = policy.acting_forward(stacked, obs, stacked=True)
    vmapped_mean, vmapped_log_std = policy.mean_and_log_std_stacked(obs, stacked)
    assert torch.equal(stacked_log_std, vmapped_log_std) and stacked_log_std.shape == (40, 2)
    if activation == "tanh":
        torch.testing.assert_close(mean, expected_mean, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(stacked_mean, vmapped_mean, rtol=1e-5, atol=1e-6)
        assert not torch.equal(stacked_mean[1], stacked_mean[0])
    else:
        assert torch.equal(mean, expected_mean)
        assert torch.equal(stacked_mean, vmapped_mean)


def test_one_params_dict_per_task_matches_a_loop(policy):
    tasks = [{k: v + 0.1 * i for k, v in policy.params().items()} for i in range(4)]
    obs = torch.randn(4, 6, 5)
    batched = policy.distribution(obs, tasks)
    assert batched.mean.shape == (4, 6, 3) and batched.stddev.shape == (4, 6, 3)
    for i, p in enumerate(tasks):
        single = policy.distribution(obs[i], p)
        torch.testing.assert_close(batched.mean[i], single.mean)
        torch.testing.assert_close(batched.stddev[i], single.stddev)
        actions = torch.randn(6, 3)
        torch.testing.assert_close(
            batched.log_prob(actions.expand(4, 6, 3))[i], single.log_prob(actions)
        )


def test_adapted_params_keep_the_graph_for_second_order_gradients(policy):
    obs, actions = torch.randn(32, 5), torch.randn(32, 3)
    theta = policy.params()
    name = "mean_net.0.weight"

    def meta_grad(second_order: bool) -> torch.Tensor:
        inner = -policy.distribution(obs, theta).log_prob(actions).mean()
        grads = torch.autograd.grad(inner, list(theta.values()), create_graph=second_order)
        adapted = {k: v - 0.1 * g for (k, v), g in zip(theta.items(), grads, strict=True)}
        outer = -policy.distribution(obs, adapted).log_prob(actions).mean()
        return torch.autograd.grad(outer, [theta[name]])[0]

    # First-order: d outer / d phi, evaluated at the adapted parameters phi.
    inner = -policy.distribution(obs, theta).log_prob(actions).mean()
    grads = torch.autograd.grad(inner, list(theta.values()))
    phi = {
        k: (v - 0.1 * g).detach().requires_grad_()
        for (k, v), g in zip(theta.items(), grads, strict=True)
    }
    outer = -policy.distribution(obs, phi).log_prob(actions).mean()
    first_order = torch.autograd.grad(outer, [phi[name]])[0]

    torch.testing.assert_close(meta_grad(second_order=False), first_order)
    second = meta_grad(second_order=True)
    assert second.abs().sum() > 0
    # The Hessian term (I - lr H) makes the full meta-gradient differ from the first-order one.
    assert (second - first_order).abs().max() > 1e-4


def test_act_is_reproducible_with_a_generator_and_mean_when_deterministic(policy):
    obs = torch.randn(8, 5)
    a = policy.act(obs, generator=torch.Generator().manual_seed(3))
    b = policy.act(obs, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    torch.testing.assert_close(policy.act(obs, deterministic=True), policy.distribution(obs).mean)
    assert not torch.equal(a, policy.act(obs, generator=torch.Generator().manual_seed(4)))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"obs_dim": 0, "act_dim": 2}, "obs_dim must be a positive int"),
        ({"obs_dim": 3, "act_dim": 2.5}, "act_dim must be a positive int"),
        ({"obs_dim": 3, "act_dim": 2, "activation": "sigmoidal"}, "activation must be one of"),
        ({"obs_dim": 3, "act_dim": 2, "init_std": 0.0}, "init_std must be a finite number > 0"),
        ({"obs_dim": 3, "act_dim": 2, "hidden_sizes": (8, -1)}, "hidden size must be"),
    ],
)
def test_bad_construction_raises(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GaussianMLPPolicy(**kwargs)


def test_bad_params_and_obs_raise(policy):
    obs = torch.randn(4, 5)
    with pytest.raises(ValueError, match=r"obs must have shape \[\.\.\., 5\]"):
        policy.distribution(torch.randn(4, 6))
    params = policy.params()
    with pytest.raises(ValueError, match=r"missing \['log_std'\]"):
        policy.distribution(obs, {k: v for k, v in params.items() if k != "log_std"})
    with pytest.raises(ValueError, match=r"params\['log_std'\] has shape \(2,\), expected \(3,\)"):
        policy.distribution(obs, {**params, "log_std": torch.zeros(2)})
    with pytest.raises(ValueError, match=r"obs must be \[tasks=3"):
        policy.distribution(obs, [params] * 3)
    with pytest.raises(ValueError, match="empty list"):
        policy.distribution(obs, [])
