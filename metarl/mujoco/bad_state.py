"""MuJoCo's bad-state warnings: how the guard sees that MuJoCo's physics blew up.

When the accelerations, positions or velocities of a simulation become non-finite or huge,
MuJoCo raises a bad-state warning (``mjWARN_BADQACC/QPOS/QVEL``) and silently resets the state,
so the next observation looks sane. The guard (:mod:`metarl.env_guard` for one env,
:class:`~metarl.mujoco.vector_step.VectorStepper` for a batch) clears the counters before a
step and reads them after it; together with a non-finite state, a counted warning makes the
step's physics unstable (:func:`mujoco_unstable`, and the rule in :mod:`metarl.instability`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from metarl.instability import all_finite

try:  # MuJoCo is a dependency, but the guard also serves pure-Python envs.
    import mujoco

    #: MuJoCo's bad-state warnings, after each of which MuJoCo resets the state.
    BAD_STATE_WARNINGS = [
        int(mujoco.mjtWarning.mjWARN_BADQACC),
        int(mujoco.mjtWarning.mjWARN_BADQPOS),
        int(mujoco.mjtWarning.mjWARN_BADQVEL),
    ]
    _MjData: type | None = mujoco.MjData
except ImportError:  # pragma: no cover - mujoco is a hard dependency
    BAD_STATE_WARNINGS = []
    _MjData = None


def bad_state_counts(data: Any) -> np.ndarray | None:
    """A live view of MuJoCo's warning counters of ``data`` (None if not an ``MjData``)."""
    return data.warning.number if _MjData is not None and isinstance(data, _MjData) else None


def clear_bad_state_warnings(counts: np.ndarray) -> None:
    """Zero the bad-state counters before a step.

    MuJoCo resets the state and sets the counter to 1 on every bad-state event, so a counter
    that was already 1 would hide a second event.
    """
    counts[BAD_STATE_WARNINGS] = 0


def bad_state_warned(counts: np.ndarray) -> bool:
    """Whether a bad-state warning was counted since :func:`clear_bad_state_warnings`."""
    return bool(counts[BAD_STATE_WARNINGS].any())


def mujoco_unstable(data: Any, counts: np.ndarray) -> bool:
    """Whether the last step raised a bad-state warning or left a non-finite state."""
    if bad_state_warned(counts):
        return True
    return not (all_finite(data.qpos) and all_finite(data.qvel))
