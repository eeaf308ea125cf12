"""Meta-learners (MAML-TRPO, ProMP, Reptile, RL²), the maths they share, and the registry that
names them (:mod:`metarl.algos.registry`: ``register_algorithm`` adds a learner of your own).

``learner.train(n, callback=...)`` takes the callbacks of :mod:`metarl.algos.callbacks` (early
stopping) and :mod:`metarl.evaluation.callbacks` (held-out evaluation during training). Runs
(the run directory, checkpoints, ``metarl.load``, resuming) are :mod:`metarl.runs`'s.
"""

from __future__ import annotations

from metarl.algos.base import LearnerConfig, MetaLearner
from metarl.algos.callbacks import (
    Callback,
    CallbackList,
    StopTrainingOnReturn,
)
from metarl.algos.maml_trpo import MAMLTRPO, MAMLTRPOConfig
from metarl.algos.promp import ProMP, ProMPConfig
from metarl.algos.registry import (
    ALGORITHM_ENTRY_POINT_GROUP,
    UnknownAlgorithmError,
    algorithm_names,
    algorithm_spec,
    learner_class,
    register_algorithm,
    unregister_algorithm,
)
from metarl.algos.reptile import Reptile, ReptileConfig
from metarl.algos.rl2 import RL2, RL2Config

__all__ = [
    "ALGORITHM_ENTRY_POINT_GROUP",
    "MAMLTRPO",
    "RL2",
    "Callback",
    "CallbackList",
    "LearnerConfig",
    "MAMLTRPOConfig",
    "MetaLearner",
    "ProMP",
    "ProMPConfig",
    "RL2Config",
    "Reptile",
    "ReptileConfig",
    "StopTrainingOnReturn",
    "UnknownAlgorithmError",
    "algorithm_names",
    "algorithm_spec",
    "learner_class",
    "register_algorithm",
    "unregister_algorithm",
]
