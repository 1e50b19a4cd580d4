"""Revision files git does not track: the trap a commit hook falls into.

pre-commit stashes the unstaged changes of tracked files before running hooks, so the check sees
what the commit will hold, except for untracked files: they stay on disk. A staged model change
plus a new revision that was never ``git add``-ed therefore passes the drift check while the
commit lacks the revision, and the next checkout is broken. This module finds those files so the
check can refuse the commit and print the ``git add`` that fixes it.

Runs in the CLI process (plain ``git`` subprocesses, no Alembic); the worker tells it which
directories hold revisions, as resolved by Alembic after env.py ran.

run/gitbase.py (the base of a change, for the history checks) runs git through the same helpers.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

from migration_check.errors import ConfigError
from migration_check.findings import Finding, Location

__all__ = [
    "display",
    "git",
    "git_all",
    "toplevel",
    "untracked_revision_findings",
    "untracked_revisions",
]

GIT_TIMEOUT = 30.0


def git(
    args: Sequence[str], cwd: Path, *, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    # --literal-pathspecs: a directory named "v[1]" must not be read as a glob.
    return subprocess.run(
        ["git", "--literal-pathspecs", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=GIT_TIMEOUT,
        check=False,
    )


def git_all(calls: Sequence[Sequence[str]], cwd: Path) -> list[subprocess.CompletedProcess[str]]:
    """Independent read-only git commands, all started at once; results in order.

    Each git process costs about 2 ms to start, and a check asks git up to 14 questions
    before it can answer, even from the verdict cache: started together they cost one.
    """
    procs: list[subprocess.Popen[str]] = []
    try:
        for args in calls:
            procs.append(
                subprocess.Popen(
                    ["git", "--literal-pathspecs", *args],
                    cwd=cwd,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        done = []
        for args, proc in zip(calls, procs, strict=True):
            out, err = proc.communicate(timeout=GIT_TIMEOUT)
            done.append(subprocess.CompletedProcess(list(args), proc.returncode, out, err))
        return done
    finally:
        for proc in procs:
            if proc.poll() is None:  # an error or a signal cut the wait short
                proc.kill()
                proc.wait()


def toplevel(cwd: Path) -> Path | None:
    """The work tree's root, or None when there is no git or no repository to ask."""
    try:
        proc = git(["rev-parse", "--show-toplevel"], cwd)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0 or not proc.stdout.strip():
        return None
    return Path(proc.stdout.strip()).resolve()


def untracked_revisions(version_dirs: Iterable[str]) -> list[Path]:
    """Absolute paths of ``.py`` files under ``version_dirs`` that git neither tracks nor ignores.

    Inside a hook git points ``GIT_INDEX_FILE`` at the index being committed; it is inherited, so
    "tracked" means "in this commit". Outside a git work tree the answer is empty: the trap only
    exists where there is a commit to miss the file.
    """
    existing = [Path(d).resolve() for d in version_dirs if Path(d).is_dir()]
    if not existing:
        return []
    top = toplevel(existing[0])
    if top is None:
        return []
    inside = [d for d in existing if d == top or top in d.parents]
    if not inside:
        return []
    specs = [os.path.relpath(d, top) for d in inside]
    proc = git(["ls-files", "--others", "--exclude-standard", "-z", "--", *specs], top)
    if proc.returncode != 0:
        first = (proc.stderr.strip().splitlines() or ["no message"])[0]
        raise ConfigError(f"git ls-files failed in {top}: {first}")
    found = []
    for name in proc.stdout.split("\0"):
        path = Path(name)
        if name and path.suffix == ".py" and "__pycache__" not in path.parts:
            found.append(top / path)
    return sorted(set(found))


def display(path: Path) -> str:
    rel = os.path.relpath(path)
    return str(path) if rel.startswith("..") else rel


def untracked_revision_findings(version_dirs: Iterable[str]) -> list[Finding]:
    """One ``untracked_revision`` finding per untracked revision file, with its ``git add``."""
    findings = []
    for path in untracked_revisions(version_dirs):
        shown = display(path)
        findings.append(
            Finding(
                kind="untracked_revision",
                table=None,
                name=shown,
                message="revision file not tracked by git: the commit would not include it",
                location=Location(shown, 1),
                hint=f"git add {shlex.quote(shown)}",
                source="git",
            )
        )
    return findings
