"""config.supervisor.Supervisor with real child processes: a child that dies is restarted with a
growing pause, the others keep running, and stop() ends them all."""

import os
import sys
import threading
import time

import pytest

from config import supervisor
from config.supervisor import Supervisor

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]


def crasher(log) -> list[str]:
    """Notes each start in `log`, then exits with code 3 at once."""
    return [sys.executable, "-c", f"open({str(log)!r}, 'a').write('start\\n'); raise SystemExit(3)"]


@pytest.fixture
def running():
    """Start a Supervisor watching in a thread; stop it (and check nothing is left) at the end."""
    started = []

    def run(commands: dict[str, list[str]]) -> Supervisor:
        sup = Supervisor(commands, dict(os.environ))
        sup.start()
        thread = threading.Thread(target=sup.watch, daemon=True)
        thread.start()
        started.append((sup, thread))
        return sup

    yield run
    for sup, thread in started:
        sup.stop()
        thread.join(timeout=10)
        assert not thread.is_alive()
        assert all(child.poll() is not None for child in sup.children.values())


def wait_for(condition, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_killed_child_is_restarted_and_the_others_keep_running(running, monkeypatch):
    monkeypatch.setattr(supervisor, "RESTART_DELAYS_SECONDS", (0.2,))
    sup = running({"web": SLEEPER, "worker": SLEEPER})
    web_pid, worker_pid = sup.children["web"].pid, sup.children["worker"].pid

    os.kill(worker_pid, 9)
    wait_for(lambda: sup.children["worker"].pid != worker_pid and sup.children["worker"].poll() is None)

    assert sup.children["web"].pid == web_pid and sup.children["web"].poll() is None


def test_a_child_that_keeps_dying_is_restarted_with_growing_pauses(running, monkeypatch, tmp_path):
    monkeypatch.setattr(supervisor, "RESTART_DELAYS_SECONDS", (0.3, 0.6, 1.2))
    log = tmp_path / "starts"
    started = time.monotonic()
    sup = running({"web": SLEEPER, "beat": crasher(log)})

    wait_for(lambda: log.exists() and log.read_text().count("start") >= 4)
    elapsed = time.monotonic() - started

    assert elapsed >= 0.3 + 0.6 + 1.2  # three pauses before the fourth start, each longer than the last
    assert sup.quick_deaths["beat"] >= 3
    assert sup.children["web"].poll() is None


def test_stop_ends_every_child_and_no_restart_follows(running, monkeypatch, tmp_path):
    monkeypatch.setattr(supervisor, "RESTART_DELAYS_SECONDS", (0.1,))
    log = tmp_path / "starts"
    sup = running({"web": SLEEPER, "beat": crasher(log)})
    wait_for(lambda: log.exists())

    sup.stop()
    starts = log.read_text().count("start")
    time.sleep(0.5)

    assert log.read_text().count("start") == starts
    assert all(child.poll() is not None for child in sup.children.values())


def test_the_supervisor_starts_a_dead_embedded_server_again_and_keeps_its_children(monkeypatch, capsys):
    monkeypatch.setattr(supervisor, "SERVERS_CHECK_SECONDS", 0.05)
    dead = {"Redis": True}
    revived = []

    def revive() -> bool:
        if dead["Redis"]:
            dead["Redis"] = False
            revived.append(time.monotonic())
            return True
        return False

    sup = Supervisor({"web": SLEEPER}, dict(os.environ), servers={"Redis": revive})
    sup.start()
    web = sup.children["web"]
    thread = threading.Thread(target=sup.watch, daemon=True)
    thread.start()
    try:
        wait_for(lambda: revived)
        time.sleep(0.2)
        assert len(revived) == 1
        assert sup.children["web"] is web and web.poll() is None
    finally:
        sup.stop()
        thread.join(timeout=10)
    assert "the embedded Redis had stopped: started it again" in capsys.readouterr().err


def test_the_metrics_directory_is_created_or_emptied_of_an_earlier_runs_files(tmp_path):
    fresh = supervisor.metrics_dir_prepare(tmp_path / "metrics")
    (fresh / "counter_123.db").write_bytes(b"an earlier run's counts")
    (fresh / "histogram_456.db").write_bytes(b"")
    (fresh / "README").write_text("the operator's")

    again = supervisor.metrics_dir_prepare(fresh)

    assert again == fresh
    assert sorted(path.name for path in fresh.iterdir()) == ["README"]
