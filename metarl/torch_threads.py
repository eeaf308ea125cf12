"""Running PyTorch on a given number of intra-op threads for a block, then restoring the
caller's setting: where metarl needs one thread, and why.

- The sampler's policy forward (:mod:`metarl.sampling.sampler`), for determinism: PyTorch's
  CPU kernels can round differently with 1 and 2 threads for some batch shapes (seen with MKL
  on 2 cores for 6 observations), so a thread count that followed the number of workers would
  make the batch depend on it; and for speed: while workers or physics threads step the envs,
  PyTorch's idle threads spin-wait and take CPU from them (one thread: about 15% more env
  steps/s on 2 cores).
- RL²'s PPO update (:mod:`metarl.algos.rl2`): its GRU runs a few small matrix products per
  time step, for hundreds of steps, which a second thread only slows (one pass over 400
  trials of 800 steps: 1.5 s on one thread, 4 s on two, beside other work).
- The PPO baselines' updates (:mod:`metarl.baselines.adaptables`): their minibatches (one
  episode, a small MLP) gain nothing from more threads, and with the cores shared the threads
  wait on each other (``benchmarks/shared_cores.py``: 3x slower beside one busy process);
  one thread also makes the reports the same on any number of cores.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run PyTorch on ``n`` intra-op threads inside the block."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
