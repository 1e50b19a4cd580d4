"""The verdict cache: a check whose inputs did not change is answered without server or worker.

The commit hook after a manual check, or a second hook run, asks the same question of the same
files. A check is a function of what its worker read (``fingerprints/inputs.py`` records all of it:
every file opened, every directory listed, every environment variable read, the installed libraries)
and of what the CLI decided before starting it (the key below). When all of that still hashes the
same, the worker's answer is the same, and the CLI serves the stored one: same output, same exit
code,
``(cached verdict)`` on stderr.

What is cached is the worker's result event, not the report: everything the CLI process does after
the worker (the git check for untracked revision files, filters, rendering) runs again on every
check, cached or not.

The key (``static_key``): the format, the checker's own source files, the interpreter, the working
directory, alembic.ini's path and content, every ``.env`` from there up, every setting that is not
about output or time limits, the driver, and the PostgreSQL build. The entry then holds the
recorded inputs, checked one by one. Only complete runs are stored (a result event, exit 0 or 1),
never errors; a file that changed while the worker read it prevents storing. ``--no-cache``
(``use_cache``) and ``verdict-cache = false`` bypass it. At most
``CHECK_MIGRATIONS_VERDICT_ENTRIES`` (default 64) entries of a few KB are kept, least recently
used pruned.

Stdlib only, and cheap: it runs in the CLI process before any server or worker exists.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import secrets
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from migration_check.fingerprints.closure import stamps_changed
from migration_check.fingerprints.digests import expected_env, file_digest, unchanged
from migration_check.fingerprints.startup import static_inputs
from migration_check.protocol import ProtocolError, ResultEvent, decode, to_wire
from migration_check.settings import Settings, env_number

__all__ = ["FORMAT", "VerdictCache", "checker_digest", "holds_any", "prune", "static_key"]

# 2: the start-up and getenv inputs (fingerprints/startup.py), stats, environment listings.
FORMAT = 2
_DEFAULT_ENTRIES = 64
# Settings that change how the verdict is shown or how long it may take, never what it is.
_NOT_IN_KEY = frozenset(
    {
        "format",
        "verbose",
        "timeout",
        "lock_timeout",
        "connect_timeout",
        "source",
        "use_cache",
        "verdict_cache",
        "server_user",
        # Which process forks the worker, not what it runs: test_warm.py compares its verdicts
        # with a fresh worker's.
        "keep_warm",
    }
)


def checker_digest() -> str:
    """The checker's own code: a new checker may judge the same project differently."""
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parent
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode() + b"\0")
        with contextlib.suppress(OSError):
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None
    except OSError:
        return "unreadable"


def static_key(
    settings: Settings,
    ini: Path,
    *,
    drivername: str,
    pg_fingerprint: str,
    worker_environ: Mapping[str, str],
    history: str = "",
    start_from: str = "",
) -> str:
    """Everything the CLI knows before the worker runs that can change the worker's answer.

    ``worker_environ``: the environment the worker will start with; what of it is read before
    or below Python's ``os.environ`` (fingerprints/startup.py) is keyed here, the rest by what the
    worker recorded. ``history``: the git base of the change and the revisions it adds, when the
    worker's round trips are part of the answer (their result depends on which are new).
    ``start_from``: --start-from's dump (caches/dump.py), which psql, not Python, reads.
    """
    fields = {
        f.name: getattr(settings, f.name)
        for f in dataclasses.fields(settings)
        if f.name not in _NOT_IN_KEY
    }
    ini_digest = _digest(ini)
    # python-dotenv finds .env files with stat() calls, which the worker cannot see: every .env
    # from here and from alembic.ini's directory up to the root is part of the key instead.
    dotenvs = {
        str(d / ".env"): _digest(d / ".env")
        for start in (Path.cwd(), ini.parent)
        for d in (start, *start.parents)
    }
    raw = json.dumps(
        {
            "dotenv": dotenvs,
            "format": FORMAT,
            "checker": checker_digest(),
            "python": f"{sys.executable}|{sys.version}",
            "cwd": os.getcwd(),
            "ini": str(ini),
            "ini_digest": ini_digest,
            "settings": fields,
            "driver": drivername,
            "pg": pg_fingerprint,
            "history": history,
            "start_from": start_from,
            "startup": static_inputs(worker_environ),
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(raw.encode()).hexdigest()


def max_entries() -> int:
    return env_number("CHECK_MIGRATIONS_VERDICT_ENTRIES", _DEFAULT_ENTRIES, minimum=1)


def _closure_changed(recorded: Any) -> str | None:
    """Every module the worker loaded (fingerprints/closure.py's record), including those loaded
    before
    ``inputs`` started watching (``sitecustomize``, the checker's own).

    Checked here rather than through ``closure.closure_changed``, which imports
    ``importlib.metadata`` (25 ms, a quarter of a served verdict) for the library versions:
    those are keyed by ``inputs``' listing of every installed distribution, a superset.
    """
    if not isinstance(recorded, dict) or not isinstance(recorded.get("files"), dict):
        return "no record of the modules it loaded"
    if recorded.get("python") != sys.version:
        return "the Python version changed"
    for path, digest in recorded["files"].items():
        if file_digest(path) != digest:
            return f"{path} changed"
    return stamps_changed(recorded.get("stamps"))


class VerdictCache:
    """One check's view of the cache: its entry file, looked up before and written after."""

    def __init__(self, base: Path, key: str, worker_environ: dict[str, str]) -> None:
        self.base = base
        self.path = base / f"verdict-{key[:32]}.json"
        self.worker_environ = worker_environ
        self.started = time.time()

    def lookup(self, progress: Callable[[str], None]) -> ResultEvent | None:
        """The stored result event if every recorded input still hashes the same, else None."""
        try:
            entry = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not _well_formed(entry):
            return None
        try:
            event = decode(ResultEvent, entry["event"])
        except ProtocolError:
            return None  # a hand edit: a miss, like any entry this checker did not write
        inputs = entry["inputs"]
        reason = unchanged(inputs)
        if reason is None:
            reason = expected_env(self.worker_environ, inputs)
        if reason is None:
            reason = _closure_changed(entry.get("closure"))
        if reason is not None:
            progress(f"not reusing the previous verdict: {reason}")
            return None
        with contextlib.suppress(OSError):
            os.utime(self.path)
        stamp = time.strftime("%H:%M:%S", time.localtime(entry.get("created", 0)))
        progress(f"inputs unchanged since the check at {stamp} (cached verdict; --no-cache reruns)")
        return event

    def store(self, event: ResultEvent) -> bool:
        """Keep a complete run's result; False when the run cannot vouch for its inputs."""
        if not event.inputs:
            return False
        entry = {
            "format": FORMAT,
            "created": self.started,
            # The run's bookkeeping, kept beside the verdict rather than in it.
            "event": to_wire(dataclasses.replace(event, inputs=None, closure=None)),
            "inputs": event.inputs,
            "closure": event.closure,
        }
        try:
            self.base.mkdir(mode=0o700, parents=True, exist_ok=True)
            tmp = self.base / f".tmp-{self.path.name}-{secrets.token_hex(4)}"
            # 0600: it lists the project's paths and what its code read.
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(json.dumps(entry, sort_keys=True))
            tmp.replace(self.path)  # a concurrent reader sees the old entry or the new, whole
        except OSError:
            return False  # a cache that cannot be written costs speed, never the verdict
        prune(self.base, keep=max_entries())
        return True


def _well_formed(entry: Any) -> bool:
    """An entry this checker wrote whole: anything else (older format, a hand edit) is a miss."""
    if not isinstance(entry, dict) or entry.get("format") != FORMAT:
        return False
    event, inputs = entry.get("event"), entry.get("inputs")
    return (
        isinstance(event, dict)
        and event.get("type") == "result"
        and isinstance(event.get("findings"), list)
        and isinstance(inputs, dict)
        and all(
            isinstance(inputs.get(k), dict) for k in ("files", "dirs", "stats", "env", "libraries")
        )
        and isinstance(entry.get("closure"), dict)
    )


def holds_any(base: Path) -> bool:
    """Whether ``base`` holds a stored verdict at all (none: every lookup misses)."""
    try:
        return any(base.glob("verdict-*.json"))
    except OSError:
        return False


def prune(base: Path, *, keep: int) -> list[Path]:
    """Remove all but the ``keep`` most recently used entries (and stale temporary files)."""
    now = time.time()
    entries: list[tuple[float, Path]] = []
    removed: list[Path] = []
    for path in base.glob("verdict-*.json"):
        with contextlib.suppress(OSError):
            entries.append((path.stat().st_mtime, path))
    entries.sort(reverse=True)
    doomed = [p for _, p in entries[keep:]]
    for tmp in base.glob(".tmp-verdict-*"):
        with contextlib.suppress(OSError):
            if now - tmp.stat().st_mtime > 3600:
                doomed.append(tmp)
    for path in doomed:
        with contextlib.suppress(OSError):
            path.unlink()
            removed.append(path)
    return removed
