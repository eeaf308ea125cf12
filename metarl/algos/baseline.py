"""The linear feature baseline of Duan et al. 2016 (rllab), as MAML uses it.

A value estimate linear in per-step features of the observation and the time step, fitted by
ridge-regularised least squares to the discounted returns of one task's episodes (MAML fits a
fresh one per task and per adaptation step, on the very episodes it then scores). Fitting all
tasks of a batch is one batched solve.

Features: ``obs, obs**2, a, a**2, a**3, 1`` with ``a = t / 100`` (rllab's scaling of the time
step, which keeps the cubic term well conditioned over a 200-step horizon); all zero on
padding, so padded steps do not enter the fit.
"""

from __future__ import annotations

import torch

#: Ridge term of the first solve; multiplied by 10 for a task whose solve is not finite.
REG_COEFF = 1e-5
#: LAPACK's least-squares driver: SVD-based, deterministic (see :func:`fit_linear_baseline`).
DRIVER = "gelsd"
#: Solves tried per task (the ridge term grows 10x each time) before giving up.
MAX_TRIES = 5


def features(observations: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``[..., T, 2 * obs_dim + 4]`` features of ``[..., T, obs_dim]`` observations."""
    steps = observations.shape[-2]
    ones = mask.unsqueeze(-1)
    obs = observations * ones
    a = torch.arange(steps, dtype=obs.dtype).view(steps, 1) / 100.0 * ones
    return torch.cat([obs, obs**2, a, a**2, a**3, ones], dim=-1)


def fit_linear_baseline(
    observations: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """Per-task weights ``[tasks, F]`` fitted to ``returns`` (``[tasks, episodes, T]``).

    Solves ``(X^T X + reg I) w = X^T y`` per task in float64 by least squares, with LAPACK's
    SVD driver (``gelsd``, which NumPy's ``lstsq`` in rllab's baseline uses too); a task
    whose solution is not finite is solved again with 10x the ridge term, up to
    :data:`MAX_TRIES` times, after which a ``RuntimeError`` names the task.

    Not torch's default driver on the CPU (``gelsy``): with MKL it gave another solution at
    almost every call on the near-singular Gram matrices of Ant's features (its contact
    forces are mostly 0), so the same evaluation differed between runs (``gelsd`` is a
    function of its inputs; ``tests/test_maths.py`` checks it).
    """
    x = features(observations.double(), mask.double()).flatten(1, -2)  # [tasks, N, F]
    y = (returns.double() * mask.double()).flatten(1).unsqueeze(-1)  # [tasks, N, 1]
    gram = x.transpose(1, 2) @ x
    rhs = x.transpose(1, 2) @ y
    bad = ~(torch.isfinite(gram).all(dim=(1, 2)) & torch.isfinite(rhs).all(dim=(1, 2)))
    if bad.any():
        raise RuntimeError(
            f"the linear baseline of task(s) {torch.nonzero(bad).flatten().tolist()} could not be "
            f"fitted: its features or returns are not finite (or overflow when squared)"
        )
    eye = torch.eye(gram.shape[-1], dtype=gram.dtype)
    weights = torch.full_like(rhs, float("nan"))
    todo = torch.arange(gram.shape[0])
    reg = REG_COEFF
    for _ in range(MAX_TRIES):
        solved = torch.linalg.lstsq(gram[todo] + reg * eye, rhs[todo], driver=DRIVER).solution
        ok = torch.isfinite(solved).all(dim=(1, 2))
        weights[todo[ok]] = solved[ok]
        todo = todo[~ok]
        if len(todo) == 0:
            return weights.squeeze(-1)
        reg *= 10
    raise RuntimeError(
        f"the linear baseline of task(s) {todo.tolist()} could not be fitted (the solve was "
        f"not finite even with ridge {reg / 10:g}); check the episodes for huge values"
    )


def linear_baseline_values(
    observations: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """Fit the baseline per task and return its values ``[tasks, episodes, T]`` (0 on padding),
    in the observations' dtype."""
    weights = fit_linear_baseline(observations, returns, mask)
    x = features(observations.double(), mask.double())
    values = torch.einsum("tenf,tf->ten", x, weights)
    return (values * mask.double()).to(observations.dtype)
