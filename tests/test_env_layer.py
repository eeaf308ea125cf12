"""The env layer stands alone: a bundled family's module imports Gymnasium, MuJoCo and the task
API, not the sampler, the learners or torch; and ``import metarl`` imports those on first use."""

from __future__ import annotations

import subprocess
import sys
import textwrap

HEAVY = ("torch", "stable_baselines3", "metarl.algos", "metarl.sampling", "metarl.evaluation")


def _run(script: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_bundled_envs_import_no_sampler_learner_or_torch():
    result = _run(
        f"""
        import sys
        import numpy as np
        import metarl_envs
        from metarl_envs import BUNDLED_FAMILIES
        for entry_point in BUNDLED_FAMILIES.values():
            __import__(entry_point.split(":")[0])
        import metarl.family
        from metarl.registry import make_family

        family = make_family("HalfCheetahVel-v0")
        assert isinstance(family, metarl.family.TaskFamily)
        env = family.make_env(family.sample_tasks(1, np.random.default_rng(0))[0])
        env.reset(seed=0)
        for _ in range(3):
            env.step(env.action_space.sample())
        loaded = [m for m in {HEAVY!r} if m in sys.modules]
        assert not loaded, loaded
        print("OK")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "OK"


def test_import_metarl_is_lazy_and_every_public_name_still_works():
    result = _run(
        f"""
        import sys
        import gymnasium as gym
        import metarl

        assert not [m for m in {HEAVY!r} if m in sys.modules]
        assert set(metarl.__all__) <= set(dir(metarl))
        gym.make("metarl/HalfCheetahVel-v0", velocity=1.5)  # registered on import metarl
        assert "torch" not in sys.modules
        assert metarl.MAMLTRPO.algorithm == "maml_trpo"
        assert "torch" in sys.modules
        assert "reptile" in metarl.algorithm_names()
        for name in metarl.__all__:
            getattr(metarl, name)
        try:
            metarl.no_such_name
        except AttributeError as err:
            assert "no_such_name" in str(err)
        else:
            raise AssertionError("metarl.no_such_name did not raise")
        print("OK")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "OK"
