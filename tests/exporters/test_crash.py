"""kill -9 in the middle of exporting, restart: the on-disk queue drains into VictoriaMetrics, nothing lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from exporters.queue import DiskQueue
from hubcore.storage.readers import PromReader
from tests.exporters._util import wait_for
from tests.helpers.procs import run_victoriametrics

pytestmark = [pytest.mark.real_backend, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


def _child(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.exporters.crash_exporter", *args],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_kill_9_mid_export_then_restart_drains_the_queue(tmp_path: Path) -> None:
    queue_dir = str(tmp_path / "queue")
    with run_victoriametrics(tmp_path, "-dedup.minScrapeInterval=1ms") as vm, PromReader(vm.url) as reader:
        proc = _child(vm.url, queue_dir, "export", "100000")
        acked = 0
        assert proc.stdout is not None
        started = time.monotonic()
        for line in proc.stdout:
            if line.startswith("ok "):
                acked += 1
            if acked >= 300 or time.monotonic() - started > 60:
                break
        os.kill(proc.pid, signal.SIGKILL)  # mid-export: batches queued, some sent, some not acknowledged
        proc.wait(10)
        acked += sum(1 for line in proc.stdout if line.startswith("ok "))  # what the pipe still holds
        assert acked >= 300, proc.stderr.read() if proc.stderr else ""
        left = DiskQueue(queue_dir, fsync=False)
        pending = left.depth
        left.close()
        assert pending > 0  # the kill did leave batches that were queued but not acknowledged
        drain = _child(vm.url, queue_dir, "drain")
        out, err = drain.communicate(timeout=60)
        assert drain.returncode == 0 and "drained" in out, err
        vm.flush()
        total = wait_for(
            lambda: reader.query('max_over_time(llm_cost_usd_total{tenant_id="k9"}[1h])'),
            lambda df: not df.empty and float(df["value"].sum()) >= acked,
        )
        # every acknowledged export arrived, at most the one being written when killed is extra
        assert acked <= float(total["value"].sum()) <= acked + 1
        assert float(reader.query('resets(llm_cost_usd_total{tenant_id="k9"}[1h])')["value"].sum()) == 0
