"""Policies: networks whose parameters are handled as explicit dicts."""

from metarl.policies.base import ParameterDictPolicy, Params
from metarl.policies.gaussian_gru import GaussianGRUPolicy
from metarl.policies.gaussian_mlp import ACTIVATIONS, GaussianMLPPolicy

__all__ = ["ACTIVATIONS", "GaussianGRUPolicy", "GaussianMLPPolicy", "ParameterDictPolicy", "Params"]
