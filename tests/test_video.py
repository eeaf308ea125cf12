"""Videos of a policy before and after adaptation (metarl.evaluation.video).

Tiny renders (64x48 panels, 5-step episodes) of HalfCheetahVel keep these fast on a CPU.
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")  # Offscreen rendering; before mujoco is imported.

import importlib.util
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch

import metarl
from metarl.evaluation import video
from metarl.policies import GaussianMLPPolicy

W, H, STEPS = 64, 48, 5


@pytest.fixture(scope="module")
def family() -> metarl.TaskFamily:
    return metarl.make_family("HalfCheetahVel-v0", horizon=STEPS)


@pytest.fixture(scope="module")
def policy(family: metarl.TaskFamily) -> GaussianMLPPolicy:
    env = family.make_env(family.default_task())
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    env.close()
    torch.manual_seed(0)
    return GaussianMLPPolicy(obs_dim, act_dim, (8,))


@pytest.fixture(scope="module")
def before(policy: GaussianMLPPolicy) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in policy.params().items()}


@pytest.fixture(scope="module")
def after(before: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Clearly different parameters: a large output bias drives the joints to their limits."""
    params = {k: v.clone() for k, v in before.items()}
    params["mean_net.2.bias"] = torch.ones_like(params["mean_net.2.bias"])
    return params


def test_render_episode_shape_and_count(family, policy, before) -> None:
    task = family.test_tasks(1)[0]
    frames = video.render_episode(family, task, policy, before, width=W, height=H)
    assert len(frames) == STEPS + 1  # One after reset, one per step, horizon STEPS.
    assert all(f.shape == (H, W, 3) and f.dtype == np.uint8 for f in frames)
    short = video.render_episode(family, task, policy, before, width=W, height=H, max_steps=2)
    assert len(short) == 3
    np.testing.assert_array_equal(short[0], frames[0])  # Same seed: same reset state.


def test_params_drive_the_frames(family, policy, before, after) -> None:
    task = family.test_tasks(1)[0]
    a = video.render_episode(family, task, policy, before, width=W, height=H)
    b = video.render_episode(family, task, policy, after, width=W, height=H)
    np.testing.assert_array_equal(a[0], b[0])  # Same reset seed, same first frame ...
    assert any(not np.array_equal(x, y) for x, y in zip(a[1:], b[1:], strict=True))  # ... then not.


def test_stochastic_acting_is_seeded(family, policy, before) -> None:
    task = family.test_tasks(1)[0]
    kw = {"width": W, "height": H, "deterministic": False}
    a = video.render_episode(family, task, policy, before, seed=3, **kw)
    b = video.render_episode(family, task, policy, before, seed=3, **kw)
    mean = video.render_episode(family, task, policy, before, seed=3, width=W, height=H)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert any(not np.array_equal(x, y) for x, y in zip(a, mean, strict=True))


def test_side_by_side_holds_the_shorter_episode() -> None:
    left = [np.full((H, W, 3), i, dtype=np.uint8) for i in range(5)]
    right = [np.full((H, W, 3), 100 + i, dtype=np.uint8) for i in range(2)]
    out = video.side_by_side(left, right)
    assert len(out) == 5
    caption = out[0].shape[0] - H
    assert out[0].shape == (H + caption, 2 * W, 3) and caption > 0 and caption % 2 == 0
    assert (out[4][caption:, :W] == 4).all()  # The left panel plays on ...
    assert (out[4][caption:, W:] == 101).all()  # ... the right one holds its last frame.
    assert out[0][:caption].std() > 0  # The caption strip has text drawn on it.
    with pytest.raises(ValueError, match="same shape"):
        video.side_by_side(left, [np.zeros((H, W + 2, 3), dtype=np.uint8)])


def test_record_adaptation_videos_writes_gifs(family, policy, before, after, tmp_path) -> None:
    tasks = family.test_tasks(2)
    out_dir = tmp_path / "videos" / "nested"
    paths = video.record_adaptation_videos(
        family, policy, tasks, before, [after, before], out_dir, width=W, height=H
    )
    assert paths == [out_dir / "task_00.gif", out_dir / "task_01.gif"]
    assert sorted(p.name for p in out_dir.iterdir()) == ["task_00.gif", "task_01.gif"]  # No temp.
    for path in paths:
        assert path.stat().st_size > 0
        frames = iio.imread(path, index=None)
        assert frames.shape[0] == STEPS + 1
        height, width = frames.shape[1:3]
        assert width == 2 * W and height > H and (height - H) % 2 == 0
    # Task 0: left (meta-parameters) and right (adapted) panels differ; task 1: identical.
    frames = iio.imread(paths[0], index=None)[-1, -H:, :, :3].astype(int)
    assert np.abs(frames[:, :W] - frames[:, W:]).mean() > 1
    frames = iio.imread(paths[1], index=None)[-1, -H:, :, :3].astype(int)
    assert np.abs(frames[:, :W] - frames[:, W:]).mean() < 1


def test_record_checks_one_params_per_task(family, policy, before, tmp_path) -> None:
    with pytest.raises(ValueError, match="one params dict per task"):
        video.record_adaptation_videos(
            family, policy, family.test_tasks(2), before, [before], tmp_path
        )


def test_navigation_cannot_be_filmed(policy, before) -> None:
    nav = metarl.make_family("Navigation2D-v0")
    nav_policy = GaussianMLPPolicy(2, 2, (8,))
    with pytest.raises(ValueError, match=r"Navigation2D-v0.*rgb_array.*MuJoCo"):
        video.render_episode(nav, nav.default_task(), nav_policy, nav_policy.params())


def test_env_rejecting_render_keywords_cannot_be_filmed() -> None:
    """A family that builds its env itself (no env_class to inspect) fails the same way."""
    from metarl_envs.navigation import Navigation2DEnv, Navigation2DFamily

    class Handmade(Navigation2DFamily):
        env_class = None

        def create_env(self, task: metarl.Task, **env_kwargs: object) -> Navigation2DEnv:
            return Navigation2DEnv(**task.to_dict(), **env_kwargs)

    fam = Handmade()
    nav_policy = GaussianMLPPolicy(2, 2, (8,))
    with pytest.raises(ValueError, match=r"Handmade.*rgb_array.*MuJoCo.*render_mode"):
        video.render_episode(fam, fam.default_task(), nav_policy, nav_policy.params())


def _frames() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, size=(H, W, 3), dtype=np.uint8) for _ in range(3)]


def test_unknown_suffix(tmp_path) -> None:
    with pytest.raises(ValueError, match=r"\.gif.*\.mp4"):
        video.write_video(_frames(), tmp_path / "clip.avi")
    assert list(tmp_path.iterdir()) == []


def test_mp4_without_imageio_ffmpeg_says_how_to_get_it(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(video, "_has_ffmpeg", lambda: False)
    with pytest.raises(ImportError, match=r"metarl\[video\]"):
        video.write_video(_frames(), tmp_path / "clip.mp4")
    assert list(tmp_path.iterdir()) == []


def test_mp4_with_whatever_is_installed(tmp_path) -> None:
    """The real environment: an mp4 if imageio-ffmpeg is installed, else the ImportError."""
    path = tmp_path / "clip.mp4"
    if importlib.util.find_spec("imageio_ffmpeg") is None:
        with pytest.raises(ImportError, match=r"metarl\[video\]"):
            video.write_video(_frames(), path)
        assert not path.exists()
    else:
        assert video.write_video(_frames(), path, fps=20) == path
        assert path.stat().st_size > 0
        assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


def test_failed_write_leaves_nothing(monkeypatch, tmp_path) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        Path(args[0]).write_bytes(b"half a video")
        raise OSError("disk full")

    monkeypatch.setattr(iio, "imwrite", broken)
    (tmp_path / "clip.gif").write_bytes(b"the old video")
    with pytest.raises(OSError, match="disk full"):
        video.write_video(_frames(), tmp_path / "clip.gif")
    assert [p.name for p in tmp_path.iterdir()] == ["clip.gif"]
    assert (tmp_path / "clip.gif").read_bytes() == b"the old video"


def test_no_opengl_says_to_set_mujoco_gl() -> None:
    """Without a display and without MUJOCO_GL, MuJoCo cannot render: the error says what to
    set, instead of MuJoCo's "an OpenGL platform library has not been loaded"."""
    import subprocess
    import sys

    code = (
        "import metarl, numpy as np\n"
        "from metarl.evaluation import video\n"
        "from metarl.policies import GaussianMLPPolicy\n"
        "family = metarl.make_family('HalfCheetahVel-v0')\n"
        "policy = GaussianMLPPolicy(17, 6, (4,))\n"
        "video.render_episode(family, family.default_task(), policy, policy.params(),"
        " width=32, height=24, max_steps=1)\n"
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("MUJOCO_GL", "DISPLAY", "PYOPENGL_PLATFORM")
    }
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    if done.returncode == 0:
        pytest.skip("this machine renders without MUJOCO_GL (a display or a default GL)")
    assert "start Python with MUJOCO_GL=egl" in done.stderr, done.stderr[-2000:]
