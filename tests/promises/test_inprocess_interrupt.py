"""A signal that interrupts an in-process check goes back to the process it ran in.

``main([...])`` from Python and ``pytest --check-migrations`` run inside someone else's process:
after its teardown the check must put the host's handlers back and deliver the signal again, so
the host stops as it would without us (a CI job's SIGTERM, a developer's Ctrl-C) instead of
running on. Each test runs a real host process (pytest, or a Python script) on a copy of the
base scenario whose third revision writes to a FIFO and then sleeps in the server: the test
signals the host once the FIFO says the check is mid-upgrade, never after a sleep.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from tests.helpers.checker import checker_env
from tests.helpers.edits import write_third_revision
from tests.helpers.procfs import assert_clean

HANG = """\
    # Tells the test the check is mid-run, then holds it there until a signal ends it.
    with open(os.environ["READY_FIFO"], "w") as ready:
        ready.write("upgrading")
    op.execute("SELECT pg_sleep(600)")
"""

HOST_TESTS = """\
import os
from pathlib import Path

from migration_check.cli.app import main


def test_check():
    os.chdir(os.environ["PROJECT"])
    main([])


def test_after():
    Path(os.environ["AFTER_MARKER"]).write_text("ran")
"""

HOST_SCRIPT = """\
import os
import signal
import sys

calls = []
signal.signal(signal.SIGTERM, lambda signum, frame: calls.append(signum))
handler = signal.getsignal(signal.SIGTERM)

from migration_check.cli.app import main

kept = signal.getsignal(signal.SIGTERM) is handler
os.chdir(os.environ["PROJECT"])
rc = main([])
back = signal.getsignal(signal.SIGTERM) is handler
hook = sys.excepthook is sys.__excepthook__
print(f"rc={rc} calls={calls} kept_on_import={kept} handler_back={back} excepthook_back={hook}")
"""


class Host:
    """A host process on the hanging project, its output in files (no pipe to fill)."""

    def __init__(self, argv: Sequence[str], cwd: Path, env: dict[str, str], out: Path) -> None:
        self.out, self.err = out / "stdout", out / "stderr"
        with self.out.open("w") as stdout, self.err.open("w") as stderr:
            self.proc = subprocess.Popen(
                [sys.executable, *argv],
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
            )

    def output(self) -> str:
        return self.out.read_text() + self.err.read_text()

    def interrupt_mid_check(self, fifo: Path, sig: signal.Signals) -> int:
        """Once the revision wrote to the FIFO (the host ending first fails), send ``sig``."""
        # Opened read-write: never blocks, and never reads end-of-file while we hold it.
        fd = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
        pidfd = os.pidfd_open(self.proc.pid)
        try:
            ready, _, _ = select.select([fd, pidfd], [], [], 120)
            assert fd in ready, f"the check never reached the revision:\n{self.output()}"
            assert os.read(fd, 64) == b"upgrading"
        finally:
            os.close(fd)
            os.close(pidfd)
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=60)


class Hanging:
    """The base project with a hanging 0003, and host processes started on it."""

    def __init__(self, project: Path, tmp_path: Path, run_root: Path, cache: Path) -> None:
        self.project, self.tmp_path, self.run_root = project, tmp_path, run_root
        write_third_revision(project, HANG)
        self.fifo = tmp_path / "ready"
        os.mkfifo(self.fifo)
        self.after_marker = tmp_path / "after-ran"
        self.env = checker_env(
            run_root,
            cache,
            {
                "PROJECT": str(project),
                "READY_FIFO": str(self.fifo),
                "AFTER_MARKER": str(self.after_marker),
            },
        )
        self.hosts: list[Host] = []

    def start(self, argv: Sequence[str], cwd: Path) -> Host:
        host = Host(argv, cwd, self.env, self.tmp_path)
        self.hosts.append(host)
        return host

    def assert_clean(self) -> None:
        for host in self.hosts:
            if host.proc.poll() is None:  # a failed test's host, still in its check
                host.proc.kill()
                host.proc.wait()
        assert_clean(self.run_root, self.project)

    def pytest_host(self) -> Host:
        suite = self.tmp_path / "host"
        suite.mkdir()
        (suite / "test_host.py").write_text(HOST_TESTS)
        # -s: the checker's progress and interrupt lines reach the host's stderr file.
        return self.start(["-m", "pytest", "-s", "-p", "no:cacheprovider", "test_host.py"], suite)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for the module: the cluster initdb makes is reused (0003 is never cached)."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def hanging(project: Path, tmp_path: Path, run_root: Path, cache: Path) -> Iterator[Hanging]:
    """After the test: no server, run directory or worker left by the hosts' checks."""
    setup = Hanging(project, tmp_path, run_root, cache)
    yield setup
    setup.assert_clean()


def test_sigterm_ends_the_pytest_process_after_teardown(hanging: Hanging) -> None:
    host = hanging.pytest_host()
    returncode = host.interrupt_mid_check(hanging.fifo, signal.SIGTERM)
    output = host.output()
    # The default SIGTERM action, back in place, ended pytest: as it would have without us.
    assert returncode == -signal.SIGTERM, output
    assert "check-migrations: terminated; server stopped and files removed" in output
    assert not hanging.after_marker.exists(), output


def test_sigint_interrupts_the_pytest_session_after_teardown(hanging: Hanging) -> None:
    host = hanging.pytest_host()
    returncode = host.interrupt_mid_check(hanging.fifo, signal.SIGINT)
    output = host.output()
    # Python's SIGINT handler, back in place, raised KeyboardInterrupt: pytest's "Interrupted".
    assert returncode == pytest.ExitCode.INTERRUPTED, output
    assert "KeyboardInterrupt" in output
    assert "check-migrations: interrupted; server stopped and files removed" in output
    assert not hanging.after_marker.exists(), output


def test_a_hosts_own_sigterm_handler_runs_after_teardown(hanging: Hanging) -> None:
    script = hanging.tmp_path / "host.py"
    script.write_text(HOST_SCRIPT)
    host = hanging.start([str(script)], hanging.tmp_path)
    returncode = host.interrupt_mid_check(hanging.fifo, signal.SIGTERM)
    output = host.output()
    assert returncode == 0, output
    assert host.out.read_text() == (
        "rc=143 calls=[15] kept_on_import=True handler_back=True excepthook_back=True\n"
    ), output
    assert "check-migrations: terminated; server stopped and files removed" in output


def test_sigterm_during_the_plugins_check_tears_down_then_ends_pytest(hanging: Hanging) -> None:
    argv = ["-m", "pytest", "-p", "no:cacheprovider", "--check-migrations"]
    host = hanging.start(argv, hanging.project)
    returncode = host.interrupt_mid_check(hanging.fifo, signal.SIGTERM)
    assert returncode == -signal.SIGTERM, host.output()
    # The default action came only after teardown: nothing is left for the next run to sweep.
    hanging.assert_clean()
