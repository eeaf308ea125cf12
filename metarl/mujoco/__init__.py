"""What metarl knows of MuJoCo, for the envs: the env layer's MuJoCo helpers.

- :mod:`metarl.mujoco.bad_state`: MuJoCo's bad-state warnings, through which the guard sees
  that the physics blew up.
- :mod:`metarl.mujoco.messages`: MuJoCo's warnings to Python's logging (not
  ``MUJOCO_LOG.TXT``), and model compiling without the deprecated ``settotalmass``.
- :mod:`metarl.mujoco.vector_step`: :class:`VectorStep`, which a MuJoCo env class names to be
  stepped many envs at a time, and :class:`VectorStepper`, which steps them (MuJoCo's batch or
  threads over the envs' own ``MjData``). Envs without MuJoCo name an
  :class:`metarl.array_step.ArrayStep` instead.

A family module imports these (and Gymnasium, MuJoCo and the task API of
:mod:`metarl.family`), never the sampler or the learners.
"""

from metarl.array_step import vector_step_of
from metarl.mujoco.vector_step import VectorStep, VectorStepper

__all__ = ["VectorStep", "VectorStepper", "vector_step_of"]
