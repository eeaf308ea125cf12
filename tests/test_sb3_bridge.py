"""The Stable-Baselines3 bridge: exact parameter mapping both ways, SB3's deterministic actions
equal our clipped mean after save/load, exports of meta- and adapted parameters, bad input."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO
from torch import nn

import metarl
from metarl.policies import GaussianMLPPolicy
from metarl.sb3_bridge import (
    export_sb3,
    params_from_sb3,
    params_to_sb3,
    sb3_ppo,
    sb3_ppo_for_policy,
)

#: (hidden sizes, activation): the default shape, a non-default activation with two hidden
#: layers, and no hidden layer at all (the mean is action_net alone).
ARCHITECTURES = [((8,), "tanh"), ((16, 8), "relu"), ((), "tanh")]


@pytest.fixture(scope="module")
def cheetah() -> metarl.TaskFamily:
    return metarl.make_family("HalfCheetahVel-v0", horizon=20)


def perturbed_policy(
    hidden: tuple[int, ...], activation: str, obs_dim: int = 17, act_dim: int = 6
) -> tuple[GaussianMLPPolicy, dict[str, torch.Tensor]]:
    """A policy and parameters unlike any initialisation (non-zero biases, a different std per
    action), scaled so that some HalfCheetah means fall outside the action bounds [-1, 1]."""
    torch.manual_seed(0)
    policy = GaussianMLPPolicy(obs_dim, act_dim, hidden, activation, init_std=0.5)
    g = torch.Generator().manual_seed(1)
    params = {
        k: v.detach() + 0.3 * torch.randn(v.shape, generator=g) for k, v in policy.params().items()
    }
    last = f"mean_net.{2 * len(hidden)}.weight"
    params[last] = 3.0 * params[last]
    return policy, params


def real_observations(family: metarl.TaskFamily, n: int = 32, seed: int = 0) -> np.ndarray:
    """``n`` observations of the default task's env under random actions, as the env gives them."""
    env = family.make_env(family.default_task())
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    found = []
    for _ in range(n):
        found.append(obs)
        obs, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            obs, _ = env.reset()
    env.close()
    return np.stack(found)


def our_mean(policy: GaussianMLPPolicy, params: Mapping[str, torch.Tensor], obs: np.ndarray):
    mean, _ = policy.mean_and_log_std(torch.as_tensor(obs, dtype=torch.float32), params)
    return mean.detach().numpy()


def assert_predicts_clipped_mean(
    model: PPO, policy: GaussianMLPPolicy, params: Mapping[str, torch.Tensor], obs: np.ndarray
) -> None:
    """SB3's deterministic actions on a batch equal our mean clipped to the action space."""
    actions, _ = model.predict(obs, deterministic=True)
    space = model.action_space
    expected = np.clip(our_mean(policy, params, obs), space.low, space.high)
    assert actions.shape == expected.shape
    np.testing.assert_allclose(actions, expected, rtol=1e-5, atol=1e-6)


def assert_params_equal(got: Mapping[str, torch.Tensor], want: Mapping[str, torch.Tensor]) -> None:
    assert list(got) == list(want)
    for name in want:
        assert torch.equal(got[name], want[name]), name


@pytest.mark.parametrize(("hidden", "activation"), ARCHITECTURES)
def test_round_trip_is_exact_and_follows_the_documented_layout(cheetah, hidden, activation):
    policy, params = perturbed_policy(hidden, activation)
    model = sb3_ppo(cheetah, hidden, activation, 0.5)
    assert model.policy.activation_fn is {"tanh": nn.Tanh, "relu": nn.ReLU}[activation]
    critic = {k: v.clone() for k, v in model.policy.named_parameters() if "value_net" in k}

    params_to_sb3(model, params)
    back = params_from_sb3(model)
    assert_params_equal(back, params)
    assert list(back) == list(policy.params())  # our names, in our order

    # The layout itself, by SB3's names: hidden Linear layers in policy_net, the last in
    # action_net, log_std as is; the critic untouched.
    sb3 = dict(model.policy.named_parameters())
    n = len(hidden)
    for i in range(n):
        for kind in ("weight", "bias"):
            own = params[f"mean_net.{2 * i}.{kind}"]
            assert torch.equal(sb3[f"mlp_extractor.policy_net.{2 * i}.{kind}"], own)
    assert torch.equal(sb3["action_net.weight"], params[f"mean_net.{2 * n}.weight"])
    assert torch.equal(sb3["action_net.bias"], params[f"mean_net.{2 * n}.bias"])
    assert torch.equal(sb3["log_std"], params["log_std"])
    for k, v in critic.items():
        assert torch.equal(sb3[k], v), k

    # params_from_sb3 gives copies: changing them leaves the model alone.
    back["log_std"] += 1.0
    assert torch.equal(model.policy.log_std, params["log_std"])


@pytest.mark.parametrize(("hidden", "activation"), ARCHITECTURES)
def test_saved_and_loaded_model_predicts_our_clipped_mean(cheetah, tmp_path, hidden, activation):
    policy, params = perturbed_policy(hidden, activation)
    sb3_ppo_for_policy(cheetah, policy, params).save(tmp_path / "policy")
    loaded = PPO.load(tmp_path / "policy.zip", device="cpu")
    obs = real_observations(cheetah)
    mean = our_mean(policy, params, obs)
    assert (np.abs(mean) > 1).any() and (np.abs(mean) < 1).any()  # clipping is exercised
    assert_predicts_clipped_mean(loaded, policy, params, obs)
    assert_params_equal(params_from_sb3(loaded), params)


def test_the_prediction_check_catches_a_wrong_mapping(cheetah):
    policy, params = perturbed_policy((16, 8), "relu")
    obs = real_observations(cheetah)
    model = sb3_ppo_for_policy(cheetah, policy, params)
    assert_predicts_clipped_mean(model, policy, params, obs)

    wrong_activation = sb3_ppo(cheetah, (16, 8), "tanh", 0.5)  # forgot activation_fn
    params_to_sb3(wrong_activation, params)
    with pytest.raises(AssertionError):
        assert_predicts_clipped_mean(wrong_activation, policy, params, obs)

    # Hidden units permuted without the next layer's columns: every shape still fits.
    swapped = dict(params)
    swapped["mean_net.0.weight"] = params["mean_net.0.weight"].flip(0)
    params_to_sb3(model, swapped)
    with pytest.raises(AssertionError):
        assert_predicts_clipped_mean(model, policy, params, obs)
    with pytest.raises(AssertionError):
        assert_params_equal(params_from_sb3(model), params)


def test_params_that_do_not_fit_raise_value_errors_and_copy_nothing(cheetah):
    model = sb3_ppo(cheetah, (8,), "tanh", 1.0)
    before = params_from_sb3(model)
    _, wider = perturbed_policy((16,), "tanh")
    with pytest.raises(
        ValueError,
        match=r"params\['mean_net.0.weight'\] has shape \(16, 17\), but the SB3 model's "
        r"mlp_extractor.policy_net.0.weight expects \(8, 17\) \(its actor is obs 17 -> 8 -> 6",
    ):
        params_to_sb3(model, wider)

    _, fits = perturbed_policy((8,), "tanh")
    last_wrong = {**fits, "mean_net.2.bias": torch.zeros(5)}  # every earlier tensor fits
    with pytest.raises(ValueError, match=r"'mean_net.2.bias'.*action_net.bias expects \(6,\)"):
        params_to_sb3(model, last_wrong)
    with pytest.raises(ValueError, match=r"missing \['log_std'\], unexpected \[\]"):
        params_to_sb3(model, {k: v for k, v in fits.items() if k != "log_std"})
    with pytest.raises(ValueError, match="must be a torch.Tensor"):
        params_to_sb3(model, {**fits, "log_std": np.zeros(6)})
    with pytest.raises(ValueError, match="non-finite"):
        params_to_sb3(model, {**fits, "log_std": torch.full((6,), float("nan"))})
    assert_params_equal(params_from_sb3(model), before)  # nothing was copied

    navigation_policy = GaussianMLPPolicy(2, 2, (8,))
    with pytest.raises(ValueError, match="observations of size 2 with actions of size 2"):
        sb3_ppo_for_policy(cheetah, navigation_policy)


def test_arguments_that_would_change_the_actor_are_refused(cheetah):
    with pytest.raises(ValueError, match="activation must be one of"):
        sb3_ppo(cheetah, (8,), "sigmoid", 1.0)
    with pytest.raises(ValueError, match="init_std"):
        sb3_ppo(cheetah, (8,), "tanh", 0.0)
    with pytest.raises(ValueError, match=r"sets \['use_sde'\] itself"):
        sb3_ppo(cheetah, (8,), "tanh", 1.0, use_sde=True)
    with pytest.raises(ValueError, match=r"policy_kwargs \['net_arch'\]"):
        sb3_ppo(cheetah, (8,), "tanh", 1.0, policy_kwargs=dict(net_arch=[4]))
    # Other settings pass through.
    model = sb3_ppo(
        cheetah, (8,), "tanh", 1.0, n_steps=64, batch_size=32, policy_kwargs=dict(ortho_init=False)
    )
    assert model.n_steps == 64 and model.policy.ortho_init is False

    env = cheetah.make_env(cheetah.default_task())
    sde = PPO("MlpPolicy", env, use_sde=True, device="cpu")  # built by hand, not by sb3_ppo
    with pytest.raises(ValueError, match="not a GaussianMLPPolicy.*StateDependentNoise"):
        params_from_sb3(sde)
    env.close()


def learner_config(hidden: tuple[int, ...] = (8,), activation: str = "tanh"):
    return metarl.MAMLTRPOConfig(
        family="Navigation2D-v0",
        meta_batch_size=2,
        fast_batch_size=2,
        num_workers=0,
        hidden_sizes=hidden,
        activation=activation,
        iterations=1,
    )


@pytest.fixture
def learner() -> Iterator[metarl.MAMLTRPO]:
    with metarl.MAMLTRPO(learner_config()) as learner:
        yield learner


@pytest.mark.parametrize(("hidden", "activation"), [((8,), "tanh"), ((16, 8), "relu")])
def test_export_of_the_meta_parameters_loads_and_acts_like_our_policy(tmp_path, hidden, activation):
    with metarl.MAMLTRPO(learner_config(hidden, activation)) as learner:
        path = export_sb3(learner, tmp_path / "new" / "dir" / "meta")
        meta = {k: v.detach().clone() for k, v in learner.policy.params().items()}
        obs = real_observations(learner.family)
    assert path == tmp_path / "new" / "dir" / "meta.zip" and path.is_file()
    assert sorted(p.name for p in path.parent.iterdir()) == ["meta.zip"]  # no temporary left

    loaded = PPO.load(path, device="cpu")
    assert loaded.policy.activation_fn is {"tanh": nn.Tanh, "relu": nn.ReLU}[activation]
    assert_params_equal(params_from_sb3(loaded), meta)
    assert_predicts_clipped_mean(loaded, learner.policy, meta, obs)


def test_export_of_adapted_parameters_equals_adapt_on_an_identical_learner(tmp_path, learner):
    task = learner.family.test_tasks(1)[0]
    adapted_path = export_sb3(learner, tmp_path / "adapted.zip", task=task, episodes=2, steps=1)
    meta_path = export_sb3(learner, tmp_path / "meta.zip")
    with metarl.MAMLTRPO(learner_config()) as twin:
        expected = twin.adapt(task, 2, 1)

    adapted = params_from_sb3(PPO.load(adapted_path, device="cpu"))
    meta = params_from_sb3(PPO.load(meta_path, device="cpu"))
    assert_params_equal(adapted, expected)
    assert_params_equal(meta, {k: v.detach() for k, v in learner.policy.params().items()})
    assert any(not torch.equal(adapted[k], meta[k]) for k in meta)
    obs = real_observations(learner.family)
    assert_predicts_clipped_mean(
        PPO.load(adapted_path, device="cpu"), learner.policy, expected, obs
    )


def test_export_refuses_a_task_of_another_family_and_a_directory(tmp_path, learner, cheetah):
    with pytest.raises(ValueError, match="belongs to family HalfCheetahVel-v0"):
        export_sb3(learner, tmp_path / "x.zip", task=cheetah.default_task())
    (tmp_path / "folder.zip").mkdir()
    with pytest.raises(ValueError, match="is a directory"):
        export_sb3(learner, tmp_path / "folder.zip")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder.zip"]


def test_learning_leaves_no_sb3_folders_in_the_temp_directory(cheetah, tmp_path, monkeypatch):
    """SB3's learn() without a log folder makes an empty SB3-<time> folder in the temp
    directory on every call; ours (ppo-scratch calls it once per task) logs nowhere."""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    model = sb3_ppo(cheetah, (8,), "tanh", 1.0, n_steps=32, batch_size=32, n_epochs=1)
    model.learn(32)
    model.learn(32, reset_num_timesteps=False)
    assert not list(tmp_path.glob("SB3-*"))
    logged = PPO("MlpPolicy", model.env, n_steps=32, batch_size=32, n_epochs=1, device="cpu")
    logged.learn(32)  # SB3 alone does make one: the test would notice if SB3 stopped
    assert len(list(tmp_path.glob("SB3-*"))) == 1
