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


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="reads Linux /proc")
def test_a_threads_cpu_seconds_leave_the_other_threads_out() -> None:
    # loop_thread_cpu_us_per_event: the hub's main thread (its event loop) alone, for the loop comparison
    import threading
    import time

    def spin() -> None:  # another thread's CPU, which the main thread's clock must not include
        end = time.thread_time() + 0.3
        while time.thread_time() < end:
            pass

    worker = threading.Thread(target=spin)
    worker.start()
    worker.join()
    tick = 1 / os.sysconf("SC_CLK_TCK")
    before = time.thread_time()
    mine = process_cpu_seconds(os.getpid(), threading.get_native_id())
    after = time.thread_time()
    assert before - 2 * tick <= mine <= after + 2 * tick
    assert process_cpu_seconds(os.getpid()) >= mine + 0.3 - 2 * tick
