"""Revision files git does not track: the trap a commit hook falls into.

pre-commit stashes the unstaged changes of tracked files before running hooks, so the check sees
what the commit will hold, except for untracked files: they stay on disk. A staged model change
plus a new revision that was never ``git add``-ed therefore passes the drift check while the
commit lacks the revision, and the next checkout is broken. This module finds those files so the
check can refuse the commit and print the ``git add`` that fixes it.

Runs in the CLI process (plain ``git`` subprocesses, no Alembic); the worker tells it which
directories hold revisions, as resolved by Alembic after env.py ran.

The history checks start here too: ``find_base`` finds where a change starts (the merge base
with the default branch, ``--base-ref``, or the last commit in a hook), the files it adds go to
the worker for round trips (history.py), and revision files it edits or builds on a moved head
become findings here, read from git with ``ast`` (no revision code is imported).
"""

from __future__ import annotations

import ast
import contextlib
import os
import shlex
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from migration_check.errors import ConfigError
from migration_check.findings import Finding, Location

__all__ = [
    "Base",
    "edited_revision_findings",
    "find_base",
    "stale_revision_findings",
    "untracked_revision_findings",
    "untracked_revisions",
]

_GIT_TIMEOUT = 30.0


def _git(args: Sequence[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    # --literal-pathspecs: a directory named "v[1]" must not be read as a glob.
    return subprocess.run(
        ["git", "--literal-pathspecs", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=_GIT_TIMEOUT,
        check=False,
    )


def _toplevel(cwd: Path) -> Path | None:
    """The work tree's root, or None when there is no git or no repository to ask."""
    try:
        proc = _git(["rev-parse", "--show-toplevel"], cwd)
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
    top = _toplevel(existing[0])
    if top is None:
        return []
    inside = [d for d in existing if d == top or top in d.parents]
    if not inside:
        return []
    specs = [os.path.relpath(d, top) for d in inside]
    proc = _git(["ls-files", "--others", "--exclude-standard", "-z", "--", *specs], top)
    if proc.returncode != 0:
        first = (proc.stderr.strip().splitlines() or ["no message"])[0]
        raise ConfigError(f"git ls-files failed in {top}: {first}")
    found = []
    for name in proc.stdout.split("\0"):
        path = Path(name)
        if name and path.suffix == ".py" and "__pycache__" not in path.parts:
            found.append(top / path)
    return sorted(set(found))


def _display(path: Path) -> str:
    rel = os.path.relpath(path)
    return str(path) if rel.startswith("..") else rel


def untracked_revision_findings(version_dirs: Iterable[str]) -> list[Finding]:
    """One ``untracked_revision`` finding per untracked revision file, with its ``git add``."""
    findings = []
    for path in untracked_revisions(version_dirs):
        shown = _display(path)
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


# --- The base a change is measured from (history checks) --------------------------------------

_DEFAULT_REFS = ("origin/main", "origin/master", "main", "master")


@dataclass(frozen=True)
class Base:
    """Where a change starts, for the history checks; paths are absolute.

    ``added`` are files new since ``added_from`` (the merge base with the default branch, or
    the last commit when run as a commit hook: the staged files); ``modified`` are files that
    existed at ``modified_from`` and changed since; ``tip`` is the base branch's own commit,
    whose heads a new revision must build on.
    """

    top: Path
    label: str
    tip: str
    modified_from: str
    added: tuple[str, ...] = ()
    modified: tuple[str, ...] = ()


def _rev(top: Path, ref: str) -> str | None:
    proc = _git(["rev-parse", "-q", "--verify", f"{ref}^{{commit}}"], top)
    return proc.stdout.strip() if proc.returncode == 0 and proc.stdout.strip() else None


def _default_ref(top: Path) -> str | None:
    proc = _git(["symbolic-ref", "-q", "--short", "refs/remotes/origin/HEAD"], top)
    names = [proc.stdout.strip()] if proc.returncode == 0 and proc.stdout.strip() else []
    return next((n for n in [*names, *_DEFAULT_REFS] if _rev(top, n)), None)


def _changed(top: Path, since: str, status: str) -> list[str]:
    """Python files with git status ``status`` (A, M) between ``since`` and the work tree."""
    proc = _git(["diff", "--name-only", "--no-renames", f"--diff-filter={status}", "-z", since,
                 "--"], top)  # fmt: skip
    if proc.returncode != 0:
        first = (proc.stderr.strip().splitlines() or ["no message"])[0]
        raise ConfigError(f"git diff failed in {top}: {first}")
    names = [n for n in proc.stdout.split("\0") if n]
    if status == "A":
        others = _git(["ls-files", "--others", "--exclude-standard", "-z"], top)
        names += [n for n in others.stdout.split("\0") if n]
    return sorted({str(top / n) for n in names if n.endswith(".py")})


def find_base(cwd: Path, base_ref: str | None, *, hook: bool) -> tuple[Base | None, str]:
    """The base of the change in ``cwd``'s repository, or (None, why the checks are off).

    ``base_ref`` (``--base-ref``) wins; a commit hook measures new files from the last commit
    (what the commit adds) and edits and staleness from the default branch when there is one.
    """
    top = _toplevel(cwd)
    if top is None:
        return None, "not a git repository"
    head = _rev(top, "HEAD")
    if base_ref is not None:
        tip = _rev(top, base_ref)
        if tip is None:
            raise ConfigError(
                f"--base-ref {base_ref}: not a commit in {top}; name a branch, tag or commit "
                "(fetch it first in a shallow CI clone)"
            )
        label = base_ref
    else:
        ref = _default_ref(top)
        tip, label = (_rev(top, ref), ref) if ref else (None, "")
    if head is None:
        return None, "no commit yet"
    merge_base = None
    if tip is not None:
        proc = _git(["merge-base", "HEAD", tip], top)
        merge_base = proc.stdout.strip() if proc.returncode == 0 and proc.stdout.strip() else None
        if merge_base is None and base_ref is not None:
            raise ConfigError(f"--base-ref {base_ref}: no common history with HEAD")
    if hook and base_ref is None:
        added_from, modified_from = head, merge_base or head
        if tip is None or merge_base is None:
            tip, label = head, "the last commit"
    elif tip is None:
        return None, "no base branch (main, master or origin/HEAD); pass --base-ref REF"
    elif merge_base is None:
        return None, f"no common history with {label} (a shallow clone? fetch more of it)"
    else:
        added_from = modified_from = merge_base
    return (
        Base(
            top=top,
            label=label,
            tip=tip,
            modified_from=modified_from,
            added=tuple(_changed(top, added_from, "A")),
            modified=tuple(_changed(top, modified_from, "M")),
        ),
        "",
    )


def _show(top: Path, commit: str, path: Path) -> str | None:
    proc = _git(["show", f"{commit}:{path.relative_to(top).as_posix()}"], top)
    return proc.stdout if proc.returncode == 0 else None


def _inside(path: str, dirs: Iterable[str]) -> bool:
    real = os.path.realpath(path)
    return any(os.path.dirname(real) == os.path.realpath(d) for d in dirs)


def _functions(source: str) -> dict[str, str] | None:
    """``upgrade``/``downgrade`` as AST dumps without docstrings; comments never reach the AST."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None
    found = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name in (
            "upgrade",
            "downgrade",
        ):
            body = node.body
            first = body[0] if body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                body = body[1:] if isinstance(first.value.value, str) else body
            found[node.name] = ast.dump(ast.Module(body=body, type_ignores=[]))
    return found


def edited_revision_findings(base: Base, version_dirs: Iterable[str]) -> list[Finding]:
    """``revision_modified``: a revision the base already had whose upgrade()/downgrade() changed.

    Databases already at that revision never run it again, so the edit reaches only new ones.
    """
    dirs = list(version_dirs)
    findings = []
    for name in base.modified:
        if not _inside(name, dirs):
            continue
        path = Path(name)
        old = _show(base.top, base.modified_from, path)
        try:
            new = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        before, after = _functions(old or ""), _functions(new)
        if before is None or after is None:
            continue
        changed = [f for f in ("upgrade", "downgrade") if before.get(f) != after.get(f)]
        if not changed:
            continue
        shown = _display(path)
        rev = _assignments(new).get("revision") or path.stem
        line = next(
            (
                i
                for i, text in enumerate(new.splitlines(), 1)
                if text.startswith(f"def {changed[0]}(")
            ),
            1,
        )
        findings.append(
            Finding(
                kind="revision_modified",
                table=None,
                name=str(rev),
                message=f"{' and '.join(f'{f}()' for f in changed)} of revision {rev} changed "
                f"since {base.label}: databases already at {rev} never run it again",
                location=Location(shown, line),
                hint="revert the edit and put the change in a new revision",
                source="history",
            )
        )
    return findings


def _assignments(source: str) -> dict[str, Any]:
    """The literal ``revision`` / ``down_revision`` of a revision file (None when not literal)."""
    out: dict[str, Any] = {}
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return out
    for node in tree.body:
        target, value = None, None
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        if isinstance(target, ast.Name) and target.id in ("revision", "down_revision"):
            with contextlib.suppress(ValueError):
                out[target.id] = ast.literal_eval(value)  # type: ignore[arg-type]
    return out


def _downs(value: Any) -> set[str]:
    if value is None:
        return set()
    if isinstance(value, str):
        return {value}
    return {str(v) for v in value}


def _tip_graph(base: Base, dirs: list[str]) -> dict[str, set[str]]:
    """{revision: down_revisions} of the revision files at the base branch's tip."""
    rels = [os.path.relpath(os.path.realpath(d), base.top) for d in dirs]
    rels = [r for r in rels if not r.startswith("..")]
    if not rels:
        return {}
    listing = _git(["ls-tree", "-r", "-z", "--name-only", base.tip, "--", *rels], base.top)
    names = [n for n in listing.stdout.split("\0") if n.endswith(".py")]
    names = [n for n in names if os.path.dirname(n) in {os.path.normpath(r) for r in rels}]
    if not names:
        return {}
    proc = subprocess.run(
        ["git", "cat-file", "--batch"],
        cwd=base.top,
        input="".join(f"{base.tip}:{n}\n" for n in names).encode(),
        capture_output=True,
        timeout=_GIT_TIMEOUT,
        check=False,
    )
    graph: dict[str, set[str]] = {}
    data, pos = proc.stdout, 0
    while pos < len(data):
        header_end = data.index(b"\n", pos)
        parts = data[pos:header_end].split()
        pos = header_end + 1
        if len(parts) < 3 or parts[1] != b"blob":
            continue
        size = int(parts[2])
        values = _assignments(data[pos : pos + size].decode("utf-8", "replace"))
        pos += size + 1
        if isinstance(values.get("revision"), str):
            graph[values["revision"]] = _downs(values.get("down_revision"))
    return graph


def stale_revision_findings(base: Base, version_dirs: Iterable[str]) -> list[Finding]:
    """``stale_revision``: a new revision that builds on what is no longer the base's head."""
    dirs = list(version_dirs)
    new: dict[str, tuple[Path, set[str]]] = {}
    for name in base.added:
        if not _inside(name, dirs):
            continue
        with contextlib.suppress(OSError, UnicodeDecodeError):
            values = _assignments(Path(name).read_text(encoding="utf-8"))
            if isinstance(values.get("revision"), str):
                new[values["revision"]] = (Path(name), _downs(values.get("down_revision")))
    if not new:
        return []
    graph = _tip_graph(base, dirs)
    referenced = {d for downs in graph.values() for d in downs}
    heads = sorted(r for r in graph if r not in referenced)
    findings = []
    for rev, (path, downs) in sorted(new.items()):
        behind = sorted(d for d in downs if d not in new and d in graph and d not in heads)
        if not behind:
            continue
        shown = _display(path)
        target = ", ".join(heads) or "base"
        findings.append(
            Finding(
                kind="stale_revision",
                table=None,
                name=rev,
                message=f"revision {rev} builds on {', '.join(behind)}, but {base.label} has "
                f"moved on to head {target}: the branch went stale",
                location=Location(shown, 1),
                hint=f"point down_revision of {rev} at {target}, or merge {base.label} and run "
                'alembic merge heads -m "merge heads"',
                source="history",
            )
        )
    return findings
