"""One run over every configured Alembic config, then ignore rules and the baseline.

One config runs in this process, as it always did. Several run concurrently (as many at a
time as this process may use cores), each in its own child process
(``python -m migration_check.run.config_child``), each with its own throwaway server. Processes, not
threads: Python delivers SIGINT and SIGTERM to the main thread only, and the parent-death
signal that stops a server when the checker is SIGKILLed follows the thread that started
it; one check per process keeps every teardown guarantee the single check has. On Ctrl-C or
SIGTERM the parent sends each running child SIGTERM and waits for its teardown.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import selectors
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import migration_check
from migration_check import errors
from migration_check.errors import CheckError, WorkerError
from migration_check.findings import CheckResult, Finding
from migration_check.postgres.server import child_setup, signals_held
from migration_check.protocol import (
    ConfigAnswer,
    ConfigFailed,
    ProtocolError,
    decode_message,
    encode,
)
from migration_check.run.baseline import (
    Baseline,
    baseline_path,
    config_key,
    load_baseline,
    split_findings,
)
from migration_check.run.ignores import apply_ignores, parse_rules
from migration_check.run.project import display_path
from migration_check.run.worker_process import Progress
from migration_check.settings import Settings

__all__ = [
    "ConfigOutcome",
    "RunOutcome",
    "check_configs",
    "error_from_answer",
]


@dataclass
class ConfigOutcome:
    """One config's answer: a result, or the error that kept it from being checked."""

    config: str
    result: CheckResult | None = None
    error: CheckError | None = None


@dataclass
class RunOutcome:
    outcomes: list[ConfigOutcome]
    # Ignore rules that matched nothing in any config (stale rules rot).
    unused_rules: list[str] = field(default_factory=list)
    baseline: Baseline | None = None

    @property
    def errors(self) -> list[ConfigOutcome]:
        return [o for o in self.outcomes if o.error is not None]

    @property
    def has_findings(self) -> bool:
        return any(o.result is not None and o.result.findings for o in self.outcomes)


def check_configs(
    settings: Settings, progress: Progress, *, use_baseline: bool = True
) -> RunOutcome:
    """Check every config, then set aside ignored and baselined findings.

    With one config, a ``CheckError`` propagates as it always did; with several, each
    config's error is kept in its outcome and the others are still checked.
    """
    rules = parse_rules(settings.ignore, settings.source.get("ignore", "ignore setting"))
    baseline = None
    if use_baseline:
        path, required = baseline_path(settings.baseline)
        baseline = load_baseline(path, required=required)
    configs = settings.config_files
    if len(configs) == 1:
        from migration_check.run.check import run_check

        one = dataclasses.replace(settings, config=configs[0], configs=())
        outcomes = [ConfigOutcome(configs[0], result=run_check(one, progress, history=True))]
    else:
        outcomes = _run_children(settings, configs)
    used: set[str] = set()
    for outcome in outcomes:
        result = outcome.result
        if result is None:
            continue
        result.findings = [_from_here(f, Path(outcome.config)) for f in result.findings]
        result.findings, result.ignored = apply_ignores(result.findings, rules, used)
        if baseline is not None:
            key = config_key(outcome.config, settings.name, baseline.path)
            result.findings, result.baselined, result.fixed = split_findings(
                result.findings, key, baseline
            )
        if result.unchecked and not result.findings:
            # The finding that stopped the upgrade is set aside (or only a warning), but the
            # drift comparison still did not run: the check fails as the upgrade did, never agrees.
            if len(outcomes) == 1:
                raise errors.MigrationError(result.unchecked)
            outcome.result, outcome.error = None, errors.MigrationError(result.unchecked)
    # A rule for a config that could not be checked has not had its chance to match.
    unused = [] if any(o.error for o in outcomes) else [r.text for r in rules if r.text not in used]
    return RunOutcome(outcomes, unused, baseline)


def _from_here(finding: Finding, ini: Path) -> Finding:
    """The model's file relative to where the checker runs, not to the project's directory.

    The worker runs in the directory holding the ini and names files from there; with
    ``-c services/a/alembic.ini`` the report (and GitHub's annotations) must say
    ``services/a/models.py``. Only a path that exists under the project is moved, so a path
    already relative to here (git's findings, made in this process) stays as it is.
    """
    loc = finding.location
    if loc is None or os.path.isabs(loc.file):
        return finding
    under_project = ini.parent / loc.file
    if ini.parent.resolve() == Path.cwd().resolve() or not under_project.is_file():
        return finding
    if Path(loc.file).resolve() == under_project.resolve():
        return finding
    moved = display_path(under_project.resolve())
    return dataclasses.replace(finding, location=dataclasses.replace(loc, file=moved))


# --- several configs: one child process each ---------------------------------------------


def error_from_answer(answer: ConfigFailed) -> CheckError:
    """The child's ``CheckError`` raised again here: its class, message and detail."""
    cls = getattr(errors, answer.error_class, None)
    if not (isinstance(cls, type) and issubclass(cls, CheckError)):
        cls = WorkerError
    return cls(answer.message, detail=answer.detail)


@dataclass
class _Child:
    index: int
    config: str
    proc: subprocess.Popen[bytes]
    out: bytearray = field(default_factory=bytearray)
    err: bytearray = field(default_factory=bytearray)
    open_streams: int = 2


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    package_root = str(Path(migration_check.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
    return env


def _start(settings: Settings, index: int, config: str) -> _Child:
    one = dataclasses.replace(settings, config=config, configs=())
    # Held until the child is recorded: an interrupt inside Popen must not leave a child
    # the teardown below does not know of.
    with signals_held():
        proc = subprocess.Popen(
            # -P: the project's directory must not shadow the checker's own modules.
            [sys.executable, "-P", "-m", "migration_check.run.config_child"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_child_env(),
            # Its own session: a terminal's Ctrl-C reaches the parent, which forwards it once.
            start_new_session=True,
            # SIGTERM if this process dies: the child tears its server down.
            preexec_fn=child_setup(signal.SIGTERM),  # noqa: PLW1509 - prctl needs it
        )
    assert proc.stdin is not None
    with contextlib.suppress(BrokenPipeError):
        proc.stdin.write(encode(one).encode())
    with contextlib.suppress(BrokenPipeError):
        proc.stdin.close()
    proc.stdin = None  # sent and closed: communicate() must not flush it again
    return _Child(index, config, proc)


def _slots(count: int) -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return max(1, min(count, cores))


def _run_children(settings: Settings, configs: tuple[str, ...]) -> list[ConfigOutcome]:
    pending = list(enumerate(configs))
    running: list[_Child] = []
    done: dict[int, ConfigOutcome] = {}
    slots = _slots(len(configs))
    sel = selectors.DefaultSelector()
    try:
        while pending or running:
            while pending and len(running) < slots:
                child = _start(settings, *pending.pop(0))
                running.append(child)
                assert child.proc.stdout is not None
                assert child.proc.stderr is not None
                sel.register(child.proc.stdout, selectors.EVENT_READ, (child, child.out))
                sel.register(child.proc.stderr, selectors.EVENT_READ, (child, child.err))
            for key, _ in sel.select():
                child, buf = key.data
                stream: BinaryIO = key.fileobj  # type: ignore[assignment]
                chunk = os.read(stream.fileno(), 65536)
                if chunk:
                    buf.extend(chunk)
                    if buf is child.err:
                        _relay_lines(child)
                    continue
                sel.unregister(stream)
                stream.close()
                child.open_streams -= 1
                if child.open_streams == 0:
                    child.proc.wait()
                    running.remove(child)
                    done[child.index] = _outcome(child)
    except BaseException:
        with signals_held():
            for child in running:
                with contextlib.suppress(ProcessLookupError):
                    child.proc.send_signal(signal.SIGTERM)
            for child in running:
                # communicate(), not wait(): a child blocked on a full pipe never ends.
                child.proc.communicate()
        raise
    finally:
        sel.close()
    return [done[i] for i in range(len(configs))]


def _relay_lines(child: _Child) -> None:
    """Progress and -v output of a child, whole lines at a time so configs do not interleave."""
    *lines, rest = bytes(child.err).split(b"\n")
    if lines:
        sys.stderr.write("".join(ln.decode(errors="replace") + "\n" for ln in lines))
        sys.stderr.flush()
        child.err[:] = rest


def _outcome(child: _Child) -> ConfigOutcome:
    if child.err:
        child.err.extend(b"\n")
        _relay_lines(child)
    try:
        answer = decode_message(bytes(child.out)) if child.out else None
    except ProtocolError as exc:  # the same checker wrote it: a bug to see
        return ConfigOutcome(child.config, error=WorkerError(f"internal error: {exc}"))
    if isinstance(answer, ConfigAnswer):
        return ConfigOutcome(child.config, result=answer.result)
    if isinstance(answer, ConfigFailed):
        return ConfigOutcome(child.config, error=error_from_answer(answer))
    return ConfigOutcome(
        child.config,
        error=WorkerError(
            f"{display_path(Path(child.config))}: the check process died "
            f"(exit {child.proc.returncode}) before answering"
        ),
    )
