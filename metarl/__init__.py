"""metarl: meta-reinforcement learning for robot control.

Task families (distributions over robot-control tasks) on Gymnasium + MuJoCo, and the
meta-learners that train a policy initialisation over them.

Start with::

    import metarl, numpy as np
    family = metarl.make_family("HalfCheetahVel-v0")
    tasks = family.sample_tasks(40, np.random.default_rng(0))
    env = family.make_env(tasks[0])

``import metarl`` (which every ``import metarl.<module>`` runs first) imports only the task
API: distributions, tasks, families, the env guard and the family registry, so the env layer
(``metarl_envs``, third-party families) stands alone. The learners, the sampler and the
evaluation (torch, Stable-Baselines3) are imported when one of their names is first used
(``metarl.MAMLTRPO``, ``metarl.Sampler`` ...). The families are registered here (cheap: no
family module is imported), so ``gymnasium.make("metarl/<id>")`` works after ``import
metarl``; the learners are registered when the algorithm registry is first used.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

from metarl.distributions import Choice, Disk, Distribution, LogUniform, Uniform
from metarl.env_guard import TaskGuard, reward_terms
from metarl.family import TaskFamily
from metarl.registry import (
    FAMILY_ENTRY_POINT_GROUP,
    UnknownFamilyError,
    family_ids,
    family_spec,
    make_family,
    register_family,
    unregister_family,
)
from metarl.registry import _ensure_loaded as _register_families
from metarl.task import Parameter, Task

#: How long torch's OpenMP threads spin at a barrier before they sleep (GNU OpenMP's
#: ``GOMP_SPINCOUNT``; its default is 300000). With a core taken by another process, a
#: thread spins for the one that is not running: MAML-TRPO's step ran 2.3-2.8x slower beside
#: one busy process on 2 cores, 1.9-2.0x with 3000, at no idle cost we could measure
#: (benchmarks/shared_cores.py, RESULTS.md). It changes only how threads wait, never a
#: result. Set before torch is imported (it is read when torch loads OpenMP; the task API imported
#: above imports no torch): so it takes
#: effect when metarl is imported first (the CLI, and any script that does), and a value in
#: the environment is kept.
SPIN_COUNT = "3000"
os.environ.setdefault("GOMP_SPINCOUNT", SPIN_COUNT)

__version__ = "0.1.0.dev0"

#: The names imported on first use (PEP 562), and the module each comes from.
_LAZY: dict[str, str] = {
    **dict.fromkeys(
        [
            "MAMLTRPO",
            "LearnerConfig",
            "MAMLTRPOConfig",
            "MetaLearner",
            "ProMP",
            "ProMPConfig",
            "RL2",
            "RL2Config",
            "Reptile",
            "ReptileConfig",
        ],
        "metarl.algos",
    ),
    "load": "metarl.runs",
    **dict.fromkeys(
        [
            "ALGORITHM_ENTRY_POINT_GROUP",
            "UnknownAlgorithmError",
            "algorithm_names",
            "learner_class",
            "load_algorithm_entry_points",
            "register_algorithm",
            "register_bundled_algorithms",
            "unregister_algorithm",
        ],
        "metarl.algos.registry",
    ),
    **dict.fromkeys(["register_bundled_families", "load_family_entry_points"], "metarl.registry"),
    **dict.fromkeys(["AdaptationReport", "evaluate"], "metarl.evaluation"),
    **dict.fromkeys(["EpisodeBatch", "FamilyVecEnv", "Sampler"], "metarl.sampling"),
}

__all__ = [
    "ALGORITHM_ENTRY_POINT_GROUP",
    "FAMILY_ENTRY_POINT_GROUP",
    "MAMLTRPO",
    "RL2",
    "AdaptationReport",
    "Choice",
    "Disk",
    "Distribution",
    "EpisodeBatch",
    "FamilyVecEnv",
    "LearnerConfig",
    "LogUniform",
    "MAMLTRPOConfig",
    "MetaLearner",
    "Parameter",
    "ProMP",
    "ProMPConfig",
    "RL2Config",
    "Reptile",
    "ReptileConfig",
    "Sampler",
    "Task",
    "TaskFamily",
    "TaskGuard",
    "Uniform",
    "UnknownAlgorithmError",
    "UnknownFamilyError",
    "__version__",
    "algorithm_names",
    "evaluate",
    "family_ids",
    "family_spec",
    "learner_class",
    "load",
    "make_family",
    "register_algorithm",
    "register_family",
    "reward_terms",
    "unregister_algorithm",
    "unregister_family",
]


def __getattr__(name: str) -> Any:
    """Import a heavy name (learners, sampler, evaluation) on its first use."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'metarl' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later uses skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


# Gymnasium's ids ("metarl/<id>") must exist once metarl is imported; no family module is
# imported by this, and no learner or torch.
_register_families()
