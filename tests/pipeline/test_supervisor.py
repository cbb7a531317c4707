"""The process tree's parts on real processes and files: restarts with backoff, ordered stop, children dying
with their parent, partition locks, and published counters that never go backwards."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from onca.pipeline.counters import PublishedCounters, totals
from onca.pipeline.locks import Locks
from onca.pipeline.supervisor import Supervisor

from .test_serve_e2e import wait_for

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]
STUBBORN = [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print('ready', flush=True); time.sleep(60)"]


def gone(pid: int) -> bool:
    """Exited (a zombie waiting for its reaper counts as gone)."""
    try:
        return "zombie" in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True


def test_a_dead_child_is_restarted_with_backoff(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    supervisor = Supervisor({"sleeper": SLEEPER}, tmp_path / "pids", base_delay=0.1, max_delay=0.4)
    supervisor.start()
    try:
        pid_file = tmp_path / "pids" / "sleeper.pid"
        for _ in range(3):
            pid = int(pid_file.read_text())
            os.kill(pid, signal.SIGKILL)
            with caplog.at_level(logging.WARNING):
                wait_for(lambda p=pid: supervisor.poll() or int(pid_file.read_text()) != p, timeout=10)
        assert supervisor.children[0].restarts == 3
        assert "sleeper (pid" in caplog.text and "was killed by SIGKILL; restarting it in 0.1 s" in caplog.text
        assert "restarting it in 0.2 s" in caplog.text  # the delay doubles while the child keeps dying early
    finally:
        supervisor.stop(deadline=5)
    assert not pid_file.exists()


def test_stop_terminates_then_kills_at_the_deadline(tmp_path: Path) -> None:
    supervisor = Supervisor({"polite": SLEEPER, "stubborn": STUBBORN}, tmp_path / "pids")
    supervisor.start()
    pids = supervisor.pids()
    time.sleep(1.0)  # let the stubborn child install its handler
    started = time.monotonic()
    supervisor.stop(deadline=1.0)
    assert 0.9 < time.monotonic() - started < 5
    assert all(gone(pid) for pid in pids.values())


def test_children_die_with_a_killed_supervisor(tmp_path: Path) -> None:
    child = [sys.executable, "-c", "import time; from onca.pipeline.supervisor import die_with_parent; "
             "die_with_parent(); time.sleep(60)"]
    script = ("import sys, time; from pathlib import Path; from onca.pipeline.supervisor import Supervisor; "
              f"s = Supervisor({{'a': {child!r}, 'b': {child!r}}}, Path(sys.argv[1])); s.start(); "
              "time.sleep(60)")
    parent = subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "pids")])
    try:
        pid_files = [tmp_path / "pids" / f"{name}.pid" for name in ("a", "b")]
        wait_for(lambda: all(p.exists() for p in pid_files), timeout=20)
        time.sleep(1.0)  # the children asked for their parent-death signal
        pids = [int(p.read_text()) for p in pid_files]
        assert not any(gone(pid) for pid in pids)
        parent.kill()
        parent.wait()
        wait_for(lambda: all(gone(pid) for pid in pids), timeout=3)
    finally:
        parent.kill()
        parent.wait()


def test_a_partition_runs_in_one_process_and_layouts_never_overlap(tmp_path: Path) -> None:
    stop = threading.Event()
    held = Locks(tmp_path, ["worker-0of2.lock"], partitions=2)
    assert held.acquire(stop)
    twin = Locks(tmp_path, ["worker-0of2.lock"], partitions=2)
    other_partition = Locks(tmp_path, ["worker-1of2.lock"], partitions=2)
    other_layout = Locks(tmp_path, ["worker-0of1.lock"], partitions=1)
    assert twin._try_all() == "worker-0of2.lock"
    assert other_partition.acquire(stop)
    assert other_layout._try_all() == "worker-0of2.lock"  # waits until no worker of layout 2 runs
    held.release()
    other_partition.release()
    assert other_layout.acquire(stop)
    assert twin._try_all() == "worker-0of1.lock"
    stop.set()
    assert not twin.acquire(stop)  # a stop request ends the wait
    other_layout.release()


def test_published_counters_sum_and_never_go_backwards(tmp_path: Path) -> None:
    first = PublishedCounters(tmp_path, "worker-0of2")
    first.publish({"received": 10, "alerts": 1}, force=True)
    PublishedCounters(tmp_path, "scheduler").publish({"delivery_attempts": 3}, force=True)
    assert totals(tmp_path) == {"received": 10, "alerts": 1, "delivery_attempts": 3}
    restarted = PublishedCounters(tmp_path, "worker-0of2")  # a replacement process counts from zero again
    restarted.publish({"received": 4, "alerts": 0}, force=True)
    assert totals(tmp_path) == {"received": 14, "alerts": 1, "delivery_attempts": 3}
    restarted.publish({"received": 5, "alerts": 0})  # within `every` of the last write: not yet
    assert totals(tmp_path)["received"] == 14
