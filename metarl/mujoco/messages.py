"""MuJoCo's messages, kept where a user can see them and out of their working directory.

MuJoCo's default warning handler prints each warning and appends it to ``MUJOCO_LOG.TXT`` in
the current directory, which then sits in every folder a user trains or evaluates from. Bad
physics (``Nan, Inf or huge value in QACC ...``) is already detected and reported by the
guard (``info["sim_unstable"]``, :mod:`metarl.mujoco.bad_state`); so :func:`route_warnings`
sends MuJoCo's warnings to Python's logging instead (logger ``metarl.mujoco``): unstable
physics at DEBUG, anything else at WARNING. It is installed when the env layer first builds
a MuJoCo env's guard, and only over MuJoCo's own default handler: a handler a user set is
left alone.

:func:`compile_model` compiles a model file as MuJoCo does, but applies a ``<compiler
settotalmass=...>`` attribute (deprecated in MuJoCo 3.3, and in Gymnasium's
``half_cheetah.xml``) the way MuJoCo's deprecation message asks, after compiling: the same
model to the bit, without the warning.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import mujoco

LOGGER = logging.getLogger("metarl.mujoco")

_TOTAL_MASS = re.compile(r"""\s+settotalmass\s*=\s*["']([^"']+)["']""")


def _log_warning(message: str) -> None:
    text = message.strip()
    level = logging.DEBUG if "simulation is unstable" in text else logging.WARNING
    LOGGER.log(level, "MuJoCo: %s", text)


def route_warnings() -> None:
    """Send MuJoCo's warnings to logging (logger ``metarl.mujoco``) instead of stdout and
    ``MUJOCO_LOG.TXT``, unless a handler of the user's is installed."""
    if mujoco.get_mju_user_warning() is None:
        mujoco.set_mju_user_warning(_log_warning)


def compile_model(path: str | Path) -> mujoco.MjModel:
    """The model of the MJCF file ``path``, as ``MjModel.from_xml_path`` compiles it, with a
    ``settotalmass`` compiler attribute applied after compiling (``mj_setTotalmass``, then
    ``mj_setConst``) rather than by the deprecated attribute."""
    route_warnings()
    path = Path(path)
    text = path.read_text()
    match = _TOTAL_MASS.search(text)
    if match is None or "<include" in text or "file=" in text:  # relative files: by path
        return mujoco.MjModel.from_xml_path(str(path))
    model = mujoco.MjModel.from_xml_string(text.replace(match.group(0), "", 1))
    mujoco.mj_setTotalmass(model, float(match.group(1)))
    mujoco.mj_setConst(model, mujoco.MjData(model))
    return model
