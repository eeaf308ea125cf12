"""The pieces of a TRPO step (Schulman et al. 2015), shared by every learner that takes one.

- :func:`conjugate_gradient` solves ``H x = g`` with only Hessian-vector products (and
  :func:`conjugate_gradient_with_residual` also gives ``g - H x``, for ``x^T H x``);
- :func:`hessian_vector_product` builds ``v -> (H + damping I) v`` for the Hessian of a scalar
  (the KL) with respect to a list of parameters, by double backward;
- :func:`line_search` shrinks the natural-gradient step until the surrogate improves within
  the KL limit, and otherwise restores the parameters exactly.

Vectors are flat (``torch.nn.utils.parameters_to_vector`` order).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch.nn.utils import parameters_to_vector, vector_to_parameters


def conjugate_gradient(
    hvp: Callable[[torch.Tensor], torch.Tensor],
    b: torch.Tensor,
    iterations: int = 10,
    residual_tol: float = 1e-10,
) -> torch.Tensor:
    """Approximately solve ``H x = b`` for a symmetric positive-definite ``H`` given as
    ``hvp(v) = H v``, starting from 0; stops early once the squared residual is below
    ``residual_tol``."""
    return conjugate_gradient_with_residual(hvp, b, iterations, residual_tol)[0]


def conjugate_gradient_with_residual(
    hvp: Callable[[torch.Tensor], torch.Tensor],
    b: torch.Tensor,
    iterations: int = 10,
    residual_tol: float = 1e-10,
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`conjugate_gradient`, also returning its residual ``r = b - H x``.

    With it, ``x^T H x = x^T (b - r)`` needs no further product: TRPO's step scale
    ``sqrt(2 max_kl / x^T H x)`` then costs nothing (a product is most of a TRPO step's time).
    """
    x = torch.zeros_like(b)
    r = b.clone()
    p = b.clone()
    rr = r @ r
    for _ in range(iterations):
        if rr < residual_tol:
            break
        hp = hvp(p)
        alpha = rr / (p @ hp)
        x = x + alpha * p
        r = r - alpha * hp
        rr_new = r @ r
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x, r


def hessian_vector_product(
    scalar: torch.Tensor, params: Sequence[torch.Tensor], damping: float = 0.0
) -> Callable[[torch.Tensor], torch.Tensor]:
    """``v -> (H + damping I) v`` where ``H`` is the Hessian of ``scalar`` w.r.t. ``params``.

    The gradient is taken once with its graph, and each product differentiates ``g . v``
    (Pearlmutter's trick), so a product costs about one backward pass.
    """
    grads = torch.autograd.grad(scalar, list(params), create_graph=True)
    flat = torch.cat([g.reshape(-1) for g in grads])

    def hvp(vector: torch.Tensor) -> torch.Tensor:
        products = torch.autograd.grad(flat @ vector, list(params), retain_graph=True)
        return torch.cat([p.reshape(-1) for p in products]) + damping * vector

    return hvp


@dataclass(frozen=True)
class LineSearchResult:
    """What the line search did: ``accepted`` and at which ``step_fraction`` (0 if none),
    the surrogate loss and KL there (the old loss and 0 KL if none), after ``tries``."""

    accepted: bool
    step_fraction: float
    loss: float
    kl: float
    tries: int


@torch.no_grad()
def line_search(
    params: Sequence[torch.Tensor],
    step: torch.Tensor,
    evaluate: Callable[[], tuple[torch.Tensor, torch.Tensor]],
    old_loss: float,
    max_kl: float,
    backtrack_ratio: float = 0.8,
    max_backtracks: int = 15,
) -> LineSearchResult:
    """Try ``params + ratio^k * step`` for k = 0, 1, ...; keep the first that lowers the loss
    with ``KL <= max_kl``.

    Args:
        params: the parameters, changed in place.
        step: the full step (flat).
        evaluate: ``() -> (loss, kl)`` at the parameters' current values.
        old_loss: the loss before the step.

    If no fraction is accepted the parameters get back their exact old values (a copy made
    before the first try), and the result says so.
    """
    params = list(params)
    old = parameters_to_vector(params).clone()
    fraction = 1.0
    for k in range(max_backtracks):
        vector_to_parameters(old + fraction * step, params)
        loss, kl = (float(x) for x in evaluate())
        if loss < old_loss and kl <= max_kl:
            return LineSearchResult(True, fraction, loss, kl, k + 1)
        fraction *= backtrack_ratio
    vector_to_parameters(old, params)
    return LineSearchResult(False, 0.0, old_loss, 0.0, max_backtracks)
