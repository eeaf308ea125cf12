"""metarl: meta-reinforcement learning for robot control.

Task families (distributions over robot-control tasks) on Gymnasium + MuJoCo, and the
meta-learners that train a policy initialisation over them.

Start with::

    import metarl, numpy as np
    family = metarl.make_family("HalfCheetahVel-v0")
    tasks = family.sample_tasks(40, np.random.default_rng(0))
    env = family.make_env(tasks[0])
"""

from metarl.algos import (
    MAMLTRPO,
    LearnerConfig,
    MAMLTRPOConfig,
    MetaLearner,
    Reptile,
    ReptileConfig,
    load,
)
from metarl.algos.registry import (
    ALGORITHM_ENTRY_POINT_GROUP,
    UnknownAlgorithmError,
    algorithm_names,
    learner_class,
    load_algorithm_entry_points,
    register_algorithm,
    register_bundled_algorithms,
    unregister_algorithm,
)
from metarl.distributions import Choice, Disk, Distribution, LogUniform, Uniform
from metarl.env_guard import TaskGuard, reward_terms
from metarl.evaluation import AdaptationReport, evaluate
from metarl.family import TaskFamily
from metarl.registry import (
    FAMILY_ENTRY_POINT_GROUP,
    UnknownFamilyError,
    family_ids,
    family_spec,
    load_family_entry_points,
    make_family,
    register_bundled_families,
    register_family,
    unregister_family,
)
from metarl.sampling import EpisodeBatch, FamilyVecEnv, Sampler
from metarl.task import Parameter, Task

__version__ = "0.1.0.dev0"

__all__ = [
    "ALGORITHM_ENTRY_POINT_GROUP",
    "FAMILY_ENTRY_POINT_GROUP",
    "MAMLTRPO",
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


register_bundled_families()
load_family_entry_points()
register_bundled_algorithms()
load_algorithm_entry_points()
