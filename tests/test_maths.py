"""The shared maths of the learners against hand-computed cases and explicit Hessians."""

from __future__ import annotations

import pytest
import torch

from metarl.algos.advantages import discounted_returns, gae, masked_mean, normalize_per_task
from metarl.algos.baseline import features, fit_linear_baseline, linear_baseline_values
from metarl.algos.trpo import (
    conjugate_gradient,
    conjugate_gradient_with_residual,
    hessian_vector_product,
    line_search,
)


def t(*values):
    return torch.tensor(values, dtype=torch.float64)


def test_discounted_returns_by_hand():
    rewards, full = t(1.0, 2.0, 3.0), t(1.0, 1.0, 1.0)
    torch.testing.assert_close(discounted_returns(rewards, full, 0.5), t(2.75, 3.5, 3.0))
    # The episode ended after 2 steps: the padded reward counts for nothing.
    ended = t(1.0, 1.0, 0.0)
    torch.testing.assert_close(discounted_returns(rewards, ended, 0.5), t(2.0, 2.0, 0.0))


def test_gae_by_hand_and_lambda_one_is_returns_minus_baseline():
    rewards, values, mask = t(1.0, 1.0, 7.0), t(0.5, 0.2, 9.0), t(1.0, 1.0, 0.0)
    # delta_1 = 1 - 0.2 = 0.8 (nothing after the last step); delta_0 = 1 + 0.9 * 0.2 - 0.5.
    # A_1 = 0.8; A_0 = 0.68 + 0.9 * 0.5 * 0.8 = 1.04.
    torch.testing.assert_close(gae(rewards, values, mask, 0.9, 0.5), t(1.04, 0.8, 0.0))
    returns = discounted_returns(rewards, mask, 0.9)
    torch.testing.assert_close(gae(rewards, values, mask, 0.9, 1.0), (returns - values) * mask)


def test_normalize_per_task_over_real_steps_only():
    values = torch.tensor(
        [[[1.0, 2.0, 3.0, 100.0]], [[5.0, 5.0, 5.0, 5.0]], [[4.0, 4.0, 4.0, 4.0]]]
    )
    mask = torch.tensor([[[1.0, 1.0, 1.0, 0.0]], [[1.0, 1.0, 0.0, 0.0]], [[0.0, 0.0, 0.0, 0.0]]])
    out = normalize_per_task(values, mask)
    expected = (torch.tensor([1.0, 2.0, 3.0]) - 2.0) / ((2.0 / 3.0) ** 0.5 + 1e-8)
    torch.testing.assert_close(out[0, 0, :3], expected)
    assert out[0, 0, 3] == 0
    assert torch.all(out[1] == 0) and torch.all(out[2] == 0), "constant or empty: zeros, no NaN"
    assert masked_mean(values, mask, (1, 2)).tolist() == [2.0, 5.0, 0.0]


def test_linear_baseline_recovers_a_linear_target_and_ignores_padding():
    torch.manual_seed(0)
    obs = torch.randn(2, 4, 200, 3, dtype=torch.float64)
    mask = torch.ones(2, 4, 200, dtype=torch.float64)
    mask[1, 2, 60:] = 0
    weights = torch.randn(2, 10, dtype=torch.float64)
    target = torch.einsum("tenf,tf->ten", features(obs, mask), weights)
    target_with_junk = torch.where(mask > 0, target, torch.full_like(target, 1e6))
    fitted = fit_linear_baseline(obs, target_with_junk, mask)
    torch.testing.assert_close(fitted, weights, atol=1e-3, rtol=1e-3)  # ridge 1e-5 biases a bit
    values = linear_baseline_values(obs, target_with_junk, mask)
    torch.testing.assert_close(values, target * mask, atol=1e-3, rtol=1e-3)
    assert torch.all(values[1, 2, 60:] == 0)


def _at_offset(tensor: torch.Tensor, offset: int) -> torch.Tensor:
    """A copy of ``tensor`` starting ``offset`` elements into a fresh buffer (another
    memory alignment, as a new process's heap gives)."""
    buffer = torch.empty(tensor.numel() + offset, dtype=tensor.dtype)
    copy = buffer[offset:].view(tensor.shape)
    copy.copy_(tensor)
    return copy


def test_linear_baseline_is_the_same_to_the_bit_at_every_call_and_alignment():
    # Ant-like: 40 observation dims of which half are always 0 (contact forces at rest), so
    # the Gram matrix is singular but for the ridge. LAPACK's default least-squares driver
    # (gelsy) gave a different fit at almost every call on such a matrix, so a held-out
    # evaluation differed between processes; the fit must be a function of its inputs.
    torch.manual_seed(0)
    obs = torch.randn(3, 20, 200, 40)
    obs[..., 20:] = 0.0
    obs[..., :10] *= 1e-3
    mask = torch.ones(3, 20, 200)
    mask[1, 3, 150:] = 0
    returns = torch.randn(3, 20, 200).cumsum(-1)
    first = fit_linear_baseline(obs, returns, mask)
    assert torch.isfinite(first).all()
    for offset in range(1, 8):
        again = fit_linear_baseline(
            _at_offset(obs, offset), _at_offset(returns, offset), _at_offset(mask, offset)
        )
        assert torch.equal(again, first), f"a different fit at offset {offset}"


def test_linear_baseline_that_cannot_be_fitted_says_so():
    obs = torch.full((1, 2, 5, 2), 1e200, dtype=torch.float64)  # squares overflow
    with pytest.raises(RuntimeError, match=r"task\(s\) \[0\] could not be fitted"):
        fit_linear_baseline(obs, torch.ones(1, 2, 5), torch.ones(1, 2, 5))


def test_conjugate_gradient_solves_a_small_spd_system():
    torch.manual_seed(1)
    a = torch.randn(6, 6, dtype=torch.float64)
    h = a @ a.T + 0.5 * torch.eye(6, dtype=torch.float64)
    b = torch.randn(6, dtype=torch.float64)
    x = conjugate_gradient(lambda v: h @ v, b, iterations=10)
    torch.testing.assert_close(h @ x, b, atol=1e-8, rtol=0)


def test_conjugate_gradient_residual_gives_the_curvature_without_another_product():
    """Stopped early (3 of 6 dimensions), CG's residual is still ``b - H x``, so
    ``x^T (b - r)`` is TRPO's ``x^T H x``."""
    torch.manual_seed(3)
    a = torch.randn(6, 6, dtype=torch.float64)
    h = a @ a.T + 0.5 * torch.eye(6, dtype=torch.float64)
    b = torch.randn(6, dtype=torch.float64)
    x, r = conjugate_gradient_with_residual(lambda v: h @ v, b, iterations=3)
    assert (h @ x - b).norm() > 1e-3  # not converged: the residual matters
    torch.testing.assert_close(r, b - h @ x, atol=1e-10, rtol=0)
    torch.testing.assert_close(x @ (b - r), x @ h @ x, atol=1e-10, rtol=0)


def test_hessian_vector_product_matches_the_explicit_hessian():
    torch.manual_seed(2)
    a = torch.randn(4, 3, dtype=torch.float64)
    w1 = torch.randn(3, dtype=torch.float64, requires_grad=True)
    w2 = torch.randn(2, dtype=torch.float64, requires_grad=True)

    def f(x1, x2):
        return (torch.tanh(a @ x1) ** 2).sum() * torch.exp(x2).sum() + (x1 @ x1) * x2[0]

    hvp = hessian_vector_product(f(w1, w2), [w1, w2], damping=0.1)
    blocks = torch.autograd.functional.hessian(f, (w1.detach(), w2.detach()))
    explicit = torch.cat([torch.cat([blocks[i][j] for j in range(2)], dim=1) for i in range(2)])
    for _ in range(3):
        v = torch.randn(5, dtype=torch.float64)
        torch.testing.assert_close(hvp(v), explicit @ v + 0.1 * v)


def test_failed_line_search_restores_parameters_bit_for_bit():
    torch.manual_seed(3)
    params = [torch.randn(3, 2), torch.randn(2)]
    before = [p.clone() for p in params]
    result = line_search(
        params, torch.randn(8), lambda: (torch.tensor(2.0), torch.tensor(0.0)), 1.0, 0.01
    )
    assert not result.accepted and result.tries == 15 and result.step_fraction == 0.0
    for p, q in zip(params, before, strict=True):
        assert torch.equal(p, q)


def test_accepted_line_search_step_respects_the_kl_limit():
    target = torch.tensor([3.0, -1.0])
    params = [torch.zeros(2)]

    def evaluate():  # loss: squared distance to target; "KL": half the squared move
        return ((params[0] - target) ** 2).sum(), 0.5 * (params[0] ** 2).sum()

    result = line_search(params, target.clone(), evaluate, old_loss=10.0, max_kl=0.5)
    assert result.accepted and result.kl <= 0.5 and result.loss < 10.0
    assert result.tries > 1, "the full step breaks the limit, so it backtracked"
    torch.testing.assert_close(params[0], result.step_fraction * target)
