"""Policies: networks whose forward takes an explicit parameter dict."""

from metarl.policies.gaussian_mlp import ACTIVATIONS, GaussianMLPPolicy, Params

__all__ = ["ACTIVATIONS", "GaussianMLPPolicy", "Params"]
