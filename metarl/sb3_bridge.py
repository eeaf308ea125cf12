"""The bridge to Stable-Baselines3: our Gaussian MLP policy as the actor of an SB3 PPO model,
and back.

Why: users take a meta-learned (or adapted) policy into SB3's tools, and ``metarl export``
writes it as an SB3 PPO ``.zip`` (:func:`export_sb3`); the SB3-based baselines build their PPO
models here (:func:`sb3_ppo`) and turn a policy SB3 trained into our parameters
(:func:`params_from_sb3`), so a baseline and a meta-learner are the same network, evaluated
the same way.

The mapping is exact. With ``net_arch=dict(pi=hidden, vf=hidden)``, the Flatten features
extractor, a diagonal Gaussian (no gSDE, no tanh squashing), SB3's ``ActorCriticPolicy``
computes the action mean as ``action_net(mlp_extractor.policy_net(flatten(obs)))`` next to a
state-independent ``log_std``: the same function as our ``mean_net``, layer for layer::

    GaussianMLPPolicy               SB3 model.policy
    mean_net.{2i}  (i < n hidden)   mlp_extractor.policy_net.{2i}   (Linear; the activation
    mean_net.{2n}                   action_net                       at 2i+1 in both)
    log_std                         log_std

The critic (``mlp_extractor.value_net`` and ``value_net``) has no counterpart here; copying our
parameters in leaves it as SB3 built it.

SB3's ``predict(obs, deterministic=True)`` returns that mean clipped to the action space (as
our envs clip actions), computed on ``float32`` observations.

The ``.zip`` is SB3's own format, written by ``model.save`` and read by ``PPO.load``, because
that is what SB3 users load. SB3 stores part of it with cloudpickle, so load only files you
trust; metarl's own checkpoints never pickle (:mod:`metarl.checkpoint`).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.distributions import DiagGaussianDistribution
from stable_baselines3.common.logger import HumanOutputFormat, Logger
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.torch_layers import FlattenExtractor
from torch import nn

from metarl.algos.base import MetaLearner
from metarl.atomic import atomic_path
from metarl.family import TaskFamily
from metarl.policies.gaussian_mlp import ACTIVATIONS, GaussianMLPPolicy, Params
from metarl.task import Task

#: ``policy_kwargs`` that :func:`sb3_ppo` sets itself: the ones that make SB3's actor ours.
FIXED_POLICY_KWARGS = frozenset(
    {
        "net_arch",
        "activation_fn",
        "log_std_init",
        "use_sde",
        "squash_output",
        "features_extractor_class",
        "features_extractor_kwargs",
    }
)
#: ``PPO`` arguments that :func:`sb3_ppo` sets itself.
FIXED_PPO_KWARGS = frozenset({"policy", "device", "use_sde"})


def _check_architecture(hidden_sizes: Sequence[int], activation: str, init_std: float) -> None:
    for h in hidden_sizes:
        if isinstance(h, bool) or not isinstance(h, int) or h < 1:
            raise ValueError(f"hidden sizes must be positive ints, got {tuple(hidden_sizes)!r}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    if not (
        isinstance(init_std, (int, float))
        and not isinstance(init_std, bool)
        and math.isfinite(init_std)
        and init_std > 0
    ):
        raise ValueError(f"init_std must be a finite number > 0, got {init_std!r}")


def _check_spaces(env: gym.Env) -> None:
    if not isinstance(env.observation_space, gym.spaces.Box):
        raise ValueError(
            f"the env's observation space must be a Box (flat vectors), got {env.observation_space}"
        )
    space = env.action_space
    if not (isinstance(space, gym.spaces.Box) and len(space.shape) == 1):
        raise ValueError(f"the env's action space must be a 1-D Box, got {space}")


def sb3_ppo(
    family: TaskFamily,
    hidden_sizes: Sequence[int],
    activation: str,
    init_std: float,
    seed: int = 0,
    env: gym.Env | None = None,
    **ppo_kwargs: Any,
) -> PPO:
    """An SB3 PPO model whose actor is exactly a :class:`GaussianMLPPolicy` with this
    architecture (see the module doc for the layer mapping), on CPU.

    The actor starts from SB3's own initialisation (orthogonal); copy parameters in with
    :func:`params_to_sb3`, or use :func:`sb3_ppo_for_policy`. The critic has the same hidden
    layers. Like any SB3 model built with a seed, this seeds Python's, NumPy's and torch's
    global generators (SB3 draws from them while it trains).

    Args:
        family: the task family; its default task's env is the model's env unless ``env``
            is given.
        hidden_sizes: the hidden layers (``config.hidden_sizes``).
        activation: the nonlinearity's name, one of ``ACTIVATIONS`` (``config.activation``).
        init_std: the initial action standard deviation (``config.init_std``).
        seed: SB3's seed (its critic's initialisation, its sampling while training).
        env: the env to train on (default ``family.make_env(family.default_task())``);
            the model wraps it, ``model.env.close()`` closes it.
        **ppo_kwargs: any other ``PPO`` argument (``n_steps``, ``learning_rate``, ...), and
            ``policy_kwargs`` other than the ones that fix the actor (``FIXED_POLICY_KWARGS``).

    Raises:
        ValueError: a bad architecture, an env whose spaces our policy cannot act in, or an
            argument that would change the actor.
    """
    hidden_sizes = tuple(hidden_sizes)
    _check_architecture(hidden_sizes, activation, init_std)
    fixed = sorted(FIXED_PPO_KWARGS & set(ppo_kwargs))
    if fixed:
        raise ValueError(f"sb3_ppo sets {fixed} itself (the actor must stay ours); leave them out")
    extra_policy_kwargs = dict(ppo_kwargs.pop("policy_kwargs", None) or {})
    fixed = sorted(FIXED_POLICY_KWARGS & set(extra_policy_kwargs))
    if fixed:
        raise ValueError(
            f"sb3_ppo sets policy_kwargs {fixed} itself (the actor must stay ours); leave them out"
        )
    if env is None:
        env = family.make_env(family.default_task())
    _check_spaces(env)
    policy_kwargs = dict(
        net_arch=dict(pi=list(hidden_sizes), vf=list(hidden_sizes)),
        activation_fn=ACTIVATIONS[activation],
        log_std_init=math.log(init_std),
        **extra_policy_kwargs,
    )
    model = PPO(
        "MlpPolicy",
        env,
        policy_kwargs=policy_kwargs,
        seed=seed,
        device="cpu",
        use_sde=False,
        **ppo_kwargs,
    )
    _actor_parameters(model)  # the layout the mapping relies on (raises if SB3 changed it)
    if ppo_kwargs.get("tensorboard_log") is None:
        # Without a log folder, SB3's learn() makes an empty SB3-<time> folder in the temp
        # directory on every call (one per held-out task for ppo-scratch); log to stdout only.
        verbose = ppo_kwargs.get("verbose", 0)
        model.set_logger(Logger(None, [HumanOutputFormat(sys.stdout)] if verbose else []))
    return model


def sb3_ppo_for_policy(
    family: TaskFamily,
    policy: GaussianMLPPolicy,
    params: Params | None = None,
    seed: int = 0,
    env: gym.Env | None = None,
    **ppo_kwargs: Any,
) -> PPO:
    """:func:`sb3_ppo` with ``policy``'s architecture, its actor set to ``params`` (default:
    the policy's own parameters). Other arguments as for :func:`sb3_ppo`."""
    model = sb3_ppo(
        family,
        policy.hidden_sizes,
        policy.activation,
        policy.init_std,
        seed=seed,
        env=env,
        **ppo_kwargs,
    )
    obs_dim = int(model.policy.features_dim)
    act_dim = int(model.action_space.shape[0])  # type: ignore[index]
    if (obs_dim, act_dim) != (policy.obs_dim, policy.act_dim):
        raise ValueError(
            f"the policy acts on observations of size {policy.obs_dim} with actions of size "
            f"{policy.act_dim}, but the env's are {obs_dim} and {act_dim}: give the env of a "
            f"task of the family the policy was trained on"
        )
    params_to_sb3(model, policy.params() if params is None else params)
    return model


def _actor_parameters(model: PPO) -> dict[str, nn.Parameter]:
    """SB3's actor parameters under our names, in our order (``policy.named_parameters()``);
    ``ValueError`` unless ``model``'s actor has the layout the mapping relies on."""
    policy = getattr(model, "policy", None)
    if not isinstance(policy, ActorCriticPolicy):
        raise ValueError(
            f"expected an SB3 PPO/A2C model with an ActorCriticPolicy, got "
            f"{type(model).__name__} with {type(policy).__name__}"
        )
    problems = []
    if type(policy.action_dist) is not DiagGaussianDistribution:
        problems.append(
            f"its action distribution is {type(policy.action_dist).__name__}, not a diagonal "
            f"Gaussian with a state-independent log-std (use_sde=False, a Box action space)"
        )
    if policy.squash_output:
        problems.append("it squashes actions (squash_output=True)")
    if type(policy.pi_features_extractor) is not FlattenExtractor:
        problems.append(
            f"its features extractor is {type(policy.pi_features_extractor).__name__}, "
            f"not FlattenExtractor"
        )
    layers = list(policy.mlp_extractor.policy_net)
    for i, layer in enumerate(layers):
        if i % 2 == 0 and not isinstance(layer, nn.Linear):
            problems.append(f"policy_net[{i}] is {type(layer).__name__}, expected Linear")
        elif i % 2 == 1 and type(layer) not in ACTIVATIONS.values():
            problems.append(
                f"policy_net[{i}] is {type(layer).__name__}, expected one of our activations "
                f"({', '.join(c.__name__ for c in ACTIVATIONS.values())})"
            )
    if len(layers) % 2:
        problems.append("policy_net ends with a Linear layer, not an activation")
    if not isinstance(policy.action_net, nn.Linear):
        problems.append(f"action_net is {type(policy.action_net).__name__}, expected Linear")
    if problems:
        raise ValueError("the SB3 model's actor is not a GaussianMLPPolicy: " + "; ".join(problems))
    linears: list[nn.Linear] = [*layers[::2], policy.action_net]
    mapped: dict[str, nn.Parameter] = {"log_std": policy.log_std}  # first, as in ours
    for k, linear in enumerate(linears):
        mapped[f"mean_net.{2 * k}.weight"] = linear.weight
        mapped[f"mean_net.{2 * k}.bias"] = linear.bias
    return mapped


def _sb3_name(model: PPO, ours: str) -> str:
    """The name in ``model.policy`` of our parameter ``ours`` (for error messages)."""
    if ours == "log_std":
        return "log_std"
    _, index, kind = ours.split(".")
    n_hidden = len(model.policy.mlp_extractor.policy_net) // 2
    if int(index) // 2 == n_hidden:
        return f"action_net.{kind}"
    return f"mlp_extractor.policy_net.{index}.{kind}"


def _architecture(actor: Mapping[str, torch.Tensor]) -> str:
    """``obs 17 -> 64 -> 64 -> 6 actions`` for the actor's weights."""
    weights = [v for k, v in actor.items() if k.endswith(".weight")]
    sizes = [weights[0].shape[1], *(w.shape[0] for w in weights)]
    return f"obs {sizes[0]} -> " + " -> ".join(map(str, sizes[1:])) + " actions"


def params_to_sb3(model: PPO, params: Params) -> None:
    """Copy one of our parameter dicts (keys as ``policy.named_parameters()``:
    ``mean_net.0.weight``, ..., ``log_std``) into ``model``'s actor, in place. The critic is
    left as it is. Nothing is copied unless every tensor fits.

    Raises:
        ValueError: ``model``'s actor is not a Gaussian MLP, or ``params`` has other names,
            another shape than the model's layer, or non-finite values.
    """
    actor = _actor_parameters(model)
    if not isinstance(params, Mapping):
        raise ValueError(f"params must be a dict of tensors, got {type(params).__name__}")
    missing, extra = sorted(set(actor) - set(params)), sorted(set(params) - set(actor))
    if missing or extra:
        raise ValueError(
            f"params do not match the SB3 model's actor ({_architecture(actor)}): missing "
            f"{missing}, unexpected {extra}; expected exactly {list(actor)}"
        )
    for name, target in actor.items():
        value = params[name]
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"params[{name!r}] must be a torch.Tensor, got {type(value).__name__}")
        if tuple(value.shape) != tuple(target.shape):
            raise ValueError(
                f"params[{name!r}] has shape {tuple(value.shape)}, but the SB3 model's "
                f"{_sb3_name(model, name)} expects {tuple(target.shape)} (its actor is "
                f"{_architecture(actor)}); build the model with the policy's hidden sizes, "
                f"on an env of the policy's family"
            )
        if not torch.isfinite(value).all():
            raise ValueError(f"params[{name!r}] has non-finite values")
    with torch.no_grad():
        for name, target in actor.items():
            target.copy_(params[name].detach())


def params_from_sb3(model: PPO) -> dict[str, torch.Tensor]:
    """``model``'s actor as one of our parameter dicts (detached copies, keys and order as
    ``policy.named_parameters()``): the inverse of :func:`params_to_sb3`.

    The dict does not record the activation: evaluate it with a :class:`GaussianMLPPolicy`
    of the model's activation (``model.policy.activation_fn``).

    Raises:
        ValueError: ``model``'s actor is not a Gaussian MLP (gSDE, squashing, another
            features extractor or layer layout).
    """
    return {name: p.detach().clone() for name, p in _actor_parameters(model).items()}


def _zip_path(path: str | Path) -> Path:
    """Where ``model.save(path)`` writes: SB3 appends ``.zip`` when the name has no suffix
    (``stable_baselines3.common.save_util.open_path_pathlib``)."""
    path = Path(path)
    return Path(f"{path}.zip") if path.suffix == "" else path


def export_sb3(
    learner: MetaLearner,
    path: str | Path,
    task: Task | None = None,
    episodes: int = 20,
    steps: int = 1,
    seed: int = 0,
) -> Path:
    """Write ``learner``'s policy as an SB3 PPO ``.zip`` (load it with
    ``stable_baselines3.PPO.load(path)``); returns the path written.

    Without ``task``: the meta-parameters. With ``task`` (a :class:`~metarl.Task` of the
    learner's family): the parameters ``learner.adapt(task, episodes, steps)`` gives, sampled
    from the learner's sampler stream (so the learner's later samples move on).

    Args:
        learner: a meta-learner (e.g. ``metarl.load(checkpoint)``).
        path: the file; ``.zip`` is appended when it has no suffix, as SB3 does; parent
            directories are created; an existing file is replaced atomically.
        task: adapt to this task first (None: export the meta-parameters).
        episodes: episodes per adaptation step.
        steps: adaptation steps.
        seed: SB3's seed for the model (its critic's initialisation).

    Raises:
        ValueError: ``path`` is a directory, ``task`` belongs to another family, or the
            learner's policy is recurrent (RL²: SB3's PPO policies are feed-forward).
        TypeError: ``task`` is not a :class:`~metarl.Task`.
    """
    if learner.policy.recurrent:
        raise ValueError(
            f"{type(learner).display_name}'s policy is recurrent (its hidden state carries the "
            f"adaptation), and Stable-Baselines3's PPO policies are feed-forward: it cannot be "
            f"exported as one; use its checkpoint with metarl.load"
        )
    path = _zip_path(path)
    if path.is_dir():
        raise ValueError(f"{str(path)!r} is a directory; give a file name such as policy.zip")
    family = learner.family
    env = family.make_env(family.default_task() if task is None else task)  # checks the task
    try:
        params = learner.policy.params() if task is None else learner.adapt(task, episodes, steps)
        model = sb3_ppo_for_policy(family, learner.policy, params, seed=seed, env=env)
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            model.save(handle)
    finally:
        env.close()
    return path
