"""The malloc setting the meta-learners apply: large freed tensors are reused, not unmapped."""

from __future__ import annotations

import platform
import resource

import pytest
import torch

from metarl import memory


def _page_faults_of_big_tensors(count: int) -> int:
    """Minor page faults while making ``count`` 48 MB tensors one after another (each freed
    before the next): above glibc's largest mmap threshold, each is mapped anew by default."""
    for _ in range(2):  # warm up: the first ones are faulted in either way
        torch.ones(12_000_000).sum()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(count):
        torch.ones(12_000_000).sum()
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


@pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
    reason="the setting is for glibc's malloc only",
)
def test_freed_memory_is_kept_for_the_next_allocation(monkeypatch):
    monkeypatch.delenv(memory.OPT_OUT_VARIABLE, raising=False)
    assert memory.keep_freed_memory() and memory.keep_freed_memory()  # idempotent
    # 48 MB is 11,719 pages: without the setting, each tensor is faulted in anew (20 take
    # 234k faults); with it, nearly all reuse the memory freed by the previous one.
    assert _page_faults_of_big_tensors(20) < 4 * 11_719


def test_opting_out_leaves_malloc_alone(monkeypatch):
    monkeypatch.setenv(memory.OPT_OUT_VARIABLE, "1")
    monkeypatch.setattr(memory, "_applied", False)
    assert memory.keep_freed_memory() is False
