"""``benchmarks/ingest.py`` reports the hub's CPU time per event: it must read a process's CPU time right."""

from __future__ import annotations

import math
import os
import resource

import pytest

from benchmarks.ingest import process_cpu_seconds


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="reads Linux /proc")
def test_process_cpu_seconds_is_user_plus_system_time_of_all_threads() -> None:
    before = resource.getrusage(resource.RUSAGE_SELF)
    got = process_cpu_seconds(os.getpid())
    after = resource.getrusage(resource.RUSAGE_SELF)
    tick = 1 / os.sysconf("SC_CLK_TCK")  # /proc counts whole clock ticks
    assert before.ru_utime + before.ru_stime - 2 * tick <= got <= after.ru_utime + after.ru_stime + 2 * tick


def test_a_process_that_does_not_exist_reads_nan() -> None:
    assert math.isnan(process_cpu_seconds(2**22 + 12_345))  # above Linux's largest pid
