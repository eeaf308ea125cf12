"""Videos of a meta-learned policy before and after adaptation, side by side.

Numbers say *how much* adaptation helps (return after 0, 1, 2 ... adaptation steps); a video
says *what* it changed: the cheetah that shuffled at the meta-parameters now runs at the target
speed, the ant with a disabled leg now limps forward instead of circling. ``metarl evaluate
RUN_DIR --video DIR`` writes one such video per held-out task with
:func:`record_adaptation_videos`; the pieces are usable alone:

- :func:`render_episode`: the frames of one episode of a task under one parameter set;
- :func:`side_by_side`: two episodes as one video, two panels and a caption strip;
- :func:`write_video`: frames to ``.gif`` (imageio + Pillow, always available) or ``.mp4``
  (needs the optional ``imageio-ffmpeg``: ``pip install "metarl[video]"``), written atomically.

Only families whose envs render ``rgb_array`` frames (the MuJoCo ones) can be filmed; on a
machine without a display, set ``MUJOCO_GL=egl`` (or ``osmesa``) so MuJoCo renders offscreen.
"""

from __future__ import annotations

import importlib.util
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from metarl.atomic import atomic_path
from metarl.family import TaskFamily
from metarl.policies.gaussian_mlp import GaussianMLPPolicy, Params
from metarl.task import Task

#: Video formats :func:`write_video` can write, by file suffix.
VIDEO_SUFFIXES = (".gif", ".mp4")

#: Frame rate when the caller gives none (the env's ``metadata["render_fps"]`` is better).
DEFAULT_FPS = 30

_CAPTION_BACKGROUND = (32, 32, 32)
_CAPTION_TEXT = (240, 240, 240)
_MP4_HINT = 'pip install "metarl[video]" (it adds imageio-ffmpeg), or write a .gif instead'


# ---------------------------------------------------------------------------------- checks
def _check_positive_int(name: str, value: Any) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def _check_fps(fps: Any) -> float:
    if fps is None:
        return float(DEFAULT_FPS)
    if isinstance(fps, bool) or not isinstance(fps, (int, float, np.integer, np.floating)):
        raise TypeError(f"fps must be a number, got {type(fps).__name__}")
    if not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a finite number > 0, got {fps!r}")
    return float(fps)


def _check_suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        raise ValueError(
            f"cannot write a video to {str(path)!r}: the file name must end in one of "
            f"{', '.join(VIDEO_SUFFIXES)}, got {path.suffix or 'no suffix'!r}"
        )
    return suffix


def _has_ffmpeg() -> bool:
    """Whether imageio's ffmpeg plugin can work (the optional ``imageio-ffmpeg`` package)."""
    return importlib.util.find_spec("imageio_ffmpeg") is not None


def _require_ffmpeg() -> None:
    if not _has_ffmpeg():
        raise ImportError(f"writing .mp4 videos needs the package imageio-ffmpeg: {_MP4_HINT}")


def _check_frames(frames: Sequence[np.ndarray], what: str) -> list[np.ndarray]:
    """``frames`` as a list of ``uint8`` ``[height, width, 3]`` arrays of one shape."""
    frames = [np.asarray(f) for f in frames]
    if not frames:
        raise ValueError(f"{what} is empty; give at least one frame")
    first = frames[0]
    if first.ndim != 3 or first.shape[2] != 3 or first.dtype != np.uint8:
        raise ValueError(
            f"{what} must be uint8 RGB arrays [height, width, 3], got dtype {first.dtype} "
            f"and shape {first.shape}"
        )
    for i, frame in enumerate(frames):
        if frame.shape != first.shape or frame.dtype != first.dtype:
            raise ValueError(
                f"{what}[{i}] has shape {frame.shape} and dtype {frame.dtype}; every frame "
                f"must match the first ({first.shape}, {first.dtype})"
            )
    return frames


# ---------------------------------------------------------------------------------- render
def _not_filmable(family: TaskFamily, modes: Any = None, cause: Any = None) -> ValueError:
    known = "" if modes is None else f" (its render modes: {list(modes)})"
    because = "" if cause is None else f"; building it with render_mode='rgb_array' failed: {cause}"
    return ValueError(
        f"{family.id} cannot be filmed: its env does not render 'rgb_array' frames{known}; "
        f"only families whose envs render rgb_array (the MuJoCo ones) can be filmed{because}"
    )


def _render(
    family: TaskFamily,
    task: Task,
    policy: GaussianMLPPolicy,
    params: Params,
    seed: int,
    deterministic: bool,
    width: int,
    height: int,
    max_steps: int | None,
) -> tuple[list[np.ndarray], float | None]:
    """:func:`render_episode`, also returning the env's ``metadata["render_fps"]``."""
    width = _check_positive_int("width", width)
    height = _check_positive_int("height", height)
    if max_steps is not None:
        max_steps = _check_positive_int("max_steps", max_steps)
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if not isinstance(task, Task):  # Checked here: make_env's TypeError means "cannot render".
        raise TypeError(
            f"task must be a metarl Task of {family.id}, got {type(task).__name__}; build one "
            f"with family.make_task(...) or take family.test_tasks(n)"
        )
    env_class = getattr(family, "env_class", None)
    if env_class is not None:  # Fail before building an env that cannot render.
        modes = getattr(env_class, "metadata", {}).get("render_modes", [])
        if "rgb_array" not in modes:
            raise _not_filmable(family, modes)
    try:
        env = family.make_env(task, render_mode="rgb_array", width=width, height=height)
    except TypeError as err:
        # make_env re-raises the constructor's TypeError (naming the family and kwargs).
        raise _not_filmable(family, cause=err) from err
    try:
        metadata = env.unwrapped.metadata
        if "rgb_array" not in metadata.get("render_modes", []) or env.render_mode != "rgb_array":
            raise _not_filmable(family, metadata.get("render_modes", []))
        fps = metadata.get("render_fps")
        generator = None if deterministic else torch.Generator().manual_seed(int(seed))
        obs, _ = env.reset(seed=int(seed))
        frames = [_frame(env, width, height)]
        terminated = truncated = False
        while not (terminated or truncated) and (max_steps is None or len(frames) <= max_steps):
            obs_t = torch.as_tensor(obs, dtype=torch.float32)
            action = policy.act(obs_t, params, deterministic=deterministic, generator=generator)
            obs, _, terminated, truncated, _ = env.step(action.cpu().numpy())
            frames.append(_frame(env, width, height))
    finally:
        env.close()
    return frames, (float(fps) if fps else None)


def _frame(env: gym.Env, width: int, height: int) -> np.ndarray:
    try:
        frame = env.render()
    except Exception as err:  # MuJoCo's FatalError, GLFW's errors: no OpenGL context
        if "OpenGL" not in str(err) and "GLFW" not in type(err).__name__:
            raise
        raise RuntimeError(
            f"MuJoCo could not render ({err}). On a machine without a display, start Python "
            f"with MUJOCO_GL=egl (or osmesa) in the environment (now "
            f"MUJOCO_GL={os.environ.get('MUJOCO_GL', 'unset')}); it must be set before MuJoCo "
            "is first imported."
        ) from err
    if not isinstance(frame, np.ndarray) or frame.shape != (height, width, 3):
        shape = getattr(frame, "shape", type(frame).__name__)
        raise ValueError(
            f"env.render() returned {shape}, expected an RGB frame of shape ({height}, {width}, 3)"
        )
    return np.ascontiguousarray(frame, dtype=np.uint8)


def render_episode(
    family: TaskFamily,
    task: Task,
    policy: GaussianMLPPolicy,
    params: Params,
    seed: int = 0,
    deterministic: bool = True,
    width: int = 320,
    height: int = 240,
    max_steps: int | None = None,
) -> list[np.ndarray]:
    """Film one episode of ``task`` acted by ``policy`` under ``params``.

    Args:
        family: the task family; its env must render ``rgb_array`` frames.
        task: a task of ``family``.
        policy: the policy; it acts with ``policy.act(obs, params, deterministic=...)``.
        params: one parameter dict (the meta-parameters, or one task's adapted parameters).
        seed: seeds the env's reset and, when acting stochastically, the action noise.
        deterministic: act with the mean action (default) or sample actions.
        width, height: frame size in pixels.
        max_steps: stop after this many steps even if the episode has not ended.

    Returns:
        The frames, ``uint8`` arrays ``[height, width, 3]``: one after the reset and one per
        step, until the episode terminates, reaches the family's horizon, or ``max_steps``.

    Raises:
        ValueError: the family's env cannot render ``rgb_array`` frames.
    """
    frames, _ = _render(family, task, policy, params, seed, deterministic, width, height, max_steps)
    return frames


# ---------------------------------------------------------------------------------- compose
def _caption_height(panel_height: int) -> int:
    """Height of the caption strip: about an eighth of a panel, at least 16, always even."""
    h = max(16, round(panel_height / 8))
    return h + h % 2


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (ImportError, OSError, TypeError):  # Pillow without FreeType, or before 10.1.
        return ImageFont.load_default()


def _caption(labels: Sequence[str], panel_width: int, height: int) -> np.ndarray:
    """A strip ``[height, len(labels) * panel_width, 3]`` with each label centred on its panel."""
    image = Image.new("RGB", (panel_width * len(labels), height), _CAPTION_BACKGROUND)
    draw = ImageDraw.Draw(image)
    for i, label in enumerate(labels):
        size = max(6, round(height * 0.6))
        font = _font(size)
        # Shrink the text until it fits its panel (small renders); a bitmap font cannot shrink.
        while size > 6 and draw.textlength(label, font=font) > panel_width - 4:
            size -= 1
            font = _font(size)
        left, top, right, bottom = draw.textbbox((0, 0), label, font=font)
        x = i * panel_width + (panel_width - (right - left)) / 2 - left
        y = (height - (bottom - top)) / 2 - top
        draw.text((max(i * panel_width, x), y), label, fill=_CAPTION_TEXT, font=font)
    return np.asarray(image, dtype=np.uint8)


def side_by_side(
    left_frames: Sequence[np.ndarray],
    right_frames: Sequence[np.ndarray],
    left_label: str = "before adaptation",
    right_label: str = "after adaptation",
) -> list[np.ndarray]:
    """Two episodes as one video: the panels next to each other under a caption strip.

    Both episodes must have frames of one size ``[height, width, 3]``. The result has as many
    frames as the longer episode (the shorter one holds its last frame, e.g. a Hopper that
    fell), each ``[height + caption, 2 * width, 3]`` with an even caption height, so even panel
    sizes give the even frame sizes mp4 encoders need.
    """
    left = _check_frames(left_frames, "left_frames")
    right = _check_frames(right_frames, "right_frames")
    if left[0].shape != right[0].shape:
        raise ValueError(
            f"left and right frames must have the same shape, got {left[0].shape} and "
            f"{right[0].shape}; render both episodes with the same width and height"
        )
    height, width, _ = left[0].shape
    caption = _caption([str(left_label), str(right_label)], width, _caption_height(height))
    out = []
    for t in range(max(len(left), len(right))):
        panels = np.concatenate([left[min(t, len(left) - 1)], right[min(t, len(right) - 1)]], 1)
        out.append(np.concatenate([caption, panels], axis=0))
    return out


# ---------------------------------------------------------------------------------- write
def write_video(
    frames: Sequence[np.ndarray], path: str | os.PathLike[str], fps: float | None = None
) -> Path:
    """Write ``frames`` (``uint8`` ``[height, width, 3]`` arrays) to ``path``, atomically.

    The suffix picks the format: ``.gif`` (imageio's Pillow plugin, looping forever) or
    ``.mp4`` (H.264 through imageio's ffmpeg plugin, which needs the optional package
    ``imageio-ffmpeg``: ``pip install "metarl[video]"``; frame sizes must be even). Parent
    directories are created. The video is written to a temporary file beside ``path`` and
    moved into place, so a failure never leaves a half-written video.

    Args:
        frames: the frames, all of one size.
        path: where to write, ending in ``.gif`` or ``.mp4``.
        fps: frames per second; pass the env's ``metadata["render_fps"]`` for real-time
            playback. Default 30.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: another suffix, no frames, frames of mixed or wrong shapes, or odd frame
            sizes for ``.mp4``.
        ImportError: ``.mp4`` without ``imageio-ffmpeg``.
    """
    path = Path(path)
    suffix = _check_suffix(path)
    fps = _check_fps(fps)
    frames = _check_frames(frames, "frames")
    if suffix == ".mp4":
        _require_ffmpeg()
        height, width, _ = frames[0].shape
        if height % 2 or width % 2:
            raise ValueError(
                f"mp4 (H.264) needs even frame sizes, got {width}x{height}; render with an even "
                f"width and height, or write a .gif"
            )
    import imageio.v3 as iio  # Imported here: only writing a video needs it.

    with atomic_path(path, keep_suffix=True) as temp:
        if suffix == ".gif":
            iio.imwrite(
                temp,
                np.stack(frames),
                plugin="pillow",
                extension=".gif",
                is_batch=True,
                duration=1000.0 / fps,
                loop=0,
            )
        else:
            iio.imwrite(
                temp,
                np.stack(frames),
                plugin="FFMPEG",
                extension=".mp4",
                fps=fps,
                codec="libx264",
                pixelformat="yuv420p",
                macro_block_size=1,  # Keep the frame size; the default 16 would rescale.
            )
    return path


# ---------------------------------------------------------------------------------- all
def record_adaptation_videos(
    family: TaskFamily,
    policy: GaussianMLPPolicy,
    tasks: Sequence[Task],
    before_params: Params,
    after_params: Sequence[Params],
    out_dir: str | os.PathLike[str],
    fmt: str = "gif",
    seed: int = 0,
    width: int = 320,
    height: int = 240,
) -> list[Path]:
    """For each task, a video of the policy before (left) and after (right) adaptation.

    Task ``i`` is filmed once under ``before_params`` and once under ``after_params[i]``, both
    episodes reset with the same ``seed`` and acting deterministically (the mean action), and
    written to ``out_dir/task_<i>.<fmt>`` (index zero-padded, ``task_00``) at the env's frame
    rate.

    Args:
        family: the task family; its env must render ``rgb_array`` frames.
        policy: the meta-learned policy.
        tasks: the tasks to film (e.g. held-out tasks).
        before_params: the meta-parameters (one dict, used for every task).
        after_params: one dict per task: that task's adapted parameters.
        out_dir: the directory for the videos (created if missing).
        fmt: ``"gif"`` (default) or ``"mp4"`` (needs ``pip install "metarl[video]"``).
        seed: the reset seed of every episode.
        width, height: size of each panel in pixels; must be even for ``mp4``.

    Returns:
        The paths of the videos, in task order.

    Raises:
        ValueError: a family whose env cannot render, ``after_params`` not one per task, an
            unknown ``fmt``, or an odd size for ``mp4``.
        ImportError: ``mp4`` without ``imageio-ffmpeg``.
    """
    tasks = list(tasks)
    if isinstance(after_params, Mapping):
        raise ValueError(
            "after_params must be a list with one params dict per task, got a single dict"
        )
    after_params = list(after_params)
    if len(after_params) != len(tasks):
        raise ValueError(
            f"after_params must hold one params dict per task: got {len(after_params)} for "
            f"{len(tasks)} task(s)"
        )
    suffix = _check_suffix(Path(f"task.{str(fmt).lstrip('.')}"))
    width = _check_positive_int("width", width)
    height = _check_positive_int("height", height)
    if suffix == ".mp4":  # Fail before spending time on rendering.
        _require_ffmpeg()
        if width % 2 or height % 2:
            raise ValueError(f"mp4 (H.264) needs an even width and height, got {width}x{height}")
    out_dir = Path(out_dir)
    digits = max(2, len(str(len(tasks) - 1)))
    paths = []
    for i, (task, adapted) in enumerate(zip(tasks, after_params, strict=True)):
        before, fps = _render(family, task, policy, before_params, seed, True, width, height, None)
        after, _ = _render(family, task, policy, adapted, seed, True, width, height, None)
        frames = side_by_side(before, after)
        paths.append(write_video(frames, out_dir / f"task_{i:0{digits}d}{suffix}", fps=fps))
    return paths
