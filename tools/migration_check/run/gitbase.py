"""The git base of a change, for the history checks: where it starts, what it adds and edits.

``find_base`` finds where a change starts (the merge base with the default branch,
``--base-ref``, or the last commit in a commit hook); the files it adds go to the worker for
round trips (worker/history.py); revision files it edits, or that build on a head the base branch
has moved past, become findings here, read from git with ``ast`` (no revision code is imported).
Runs in the CLI process.
"""

from __future__ import annotations

import ast
import contextlib
import os
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from migration_check.errors import ConfigError
from migration_check.findings import Finding, Location
from migration_check.run.untracked import GIT_TIMEOUT, display, git, git_all, toplevel

__all__ = ["Base", "edited_revision_findings", "find_base", "stale_revision_findings"]

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
    return _commit(git(["rev-parse", "-q", "--verify", f"{ref}^{{commit}}"], top))


def _commit(proc: subprocess.CompletedProcess[str]) -> str | None:
    return proc.stdout.strip() if proc.returncode == 0 and proc.stdout.strip() else None


def _commits(top: Path, refs: list[str]) -> list[str | None]:
    """The commit each of ``refs`` names (None: none), from one git process, not one each."""
    if any("\n" in ref for ref in refs):  # one name per line: ask one at a time
        return [_rev(top, ref) for ref in refs]
    proc = git(
        ["cat-file", "--batch-check"], top, stdin="".join(f"{ref}^{{commit}}\n" for ref in refs)
    )
    lines = proc.stdout.splitlines() if proc.returncode == 0 else []
    if len(lines) != len(refs):
        return [_rev(top, ref) for ref in refs]
    found: list[str | None] = []
    for line in lines:
        sha, _, kind = line.partition(" ")
        found.append(sha if kind.startswith("commit ") else None)
    return found


def _changed(top: Path, since: tuple[str, str]) -> tuple[list[str], list[str]]:
    """Python files added since ``since[0]`` and modified since ``since[1]``, to the work tree.

    Added: git status A, plus files git does not track (a new revision not yet staged).
    """
    diff = ["diff", "--name-status", "--no-renames", "-z"]
    if since[0] == since[1]:
        calls = [[*diff, "--diff-filter=AM", since[0], "--"]]
    else:
        calls = [
            [*diff, "--diff-filter=A", since[0], "--"],
            [*diff, "--diff-filter=M", since[1], "--"],
        ]
    others, *diffs = git_all([["ls-files", "--others", "--exclude-standard", "-z"], *calls], top)
    names: dict[str, set[str]] = {"A": set(), "M": set()}
    for proc in diffs:
        if proc.returncode != 0:
            first = (proc.stderr.strip().splitlines() or ["no message"])[0]
            raise ConfigError(f"git diff failed in {top}: {first}")
        fields = proc.stdout.split("\0")
        for status, name in zip(fields[::2], fields[1::2], strict=False):
            names.setdefault(status, set()).add(name)
    names["A"].update(n for n in others.stdout.split("\0") if n)

    def python(status: str) -> list[str]:
        return sorted({str(top / n) for n in names[status] if n.endswith(".py")})

    return python("A"), python("M")


def _tip(top: Path, base_ref: str | None) -> tuple[str | None, str | None, str]:
    """HEAD, the base branch's commit and its label.

    ``base_ref`` wins; else origin/HEAD's target, then origin/main, origin/master, main,
    master: the first that names a commit.
    """
    refs = [base_ref] if base_ref is not None else list(_DEFAULT_REFS)
    symref = (
        git(["symbolic-ref", "-q", "--short", "refs/remotes/origin/HEAD"], top)
        if base_ref is None
        else None
    )
    target = symref.stdout.strip() if symref is not None and symref.returncode == 0 else ""
    names = [target] if target and target not in refs else []
    head, *tips = _commits(top, ["HEAD", *names, *refs])
    resolved = dict(zip([*names, *refs], tips, strict=True))
    if base_ref is not None:
        return head, resolved[base_ref], base_ref
    order = [target, *refs] if target else refs
    label = next((ref for ref in order if resolved[ref]), None)
    return head, resolved[label] if label else None, label or ""


def find_base(cwd: Path, base_ref: str | None, *, hook: bool) -> tuple[Base | None, str]:
    """The base of the change in ``cwd``'s repository, or (None, why the checks are off).

    ``base_ref`` (``--base-ref``) wins; a commit hook measures new files from the last commit
    (what the commit adds) and edits and staleness from the default branch when there is one.
    """
    top = toplevel(cwd)
    if top is None:
        return None, "not a git repository"
    head, tip, label = _tip(top, base_ref)
    if base_ref is not None and tip is None:
        raise ConfigError(
            f"--base-ref {base_ref}: not a commit in {top}; name a branch, tag or commit "
            "(fetch it first in a shallow CI clone)"
        )
    if head is None:
        return None, "no commit yet"
    merge_base = None
    if tip is not None:
        # On the base branch itself the answer is known without asking.
        merge_base = head if tip == head else _commit(git(["merge-base", "HEAD", tip], top))
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
    added, modified = _changed(top, (added_from, modified_from))
    return (
        Base(
            top=top,
            label=label,
            tip=tip,
            modified_from=modified_from,
            added=tuple(added),
            modified=tuple(modified),
        ),
        "",
    )


def _show(top: Path, commit: str, path: Path) -> str | None:
    proc = git(["show", f"{commit}:{path.relative_to(top).as_posix()}"], top)
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
        shown = display(path)
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
    listing = git(["ls-tree", "-r", "-z", "--name-only", base.tip, "--", *rels], base.top)
    names = [n for n in listing.stdout.split("\0") if n.endswith(".py")]
    names = [n for n in names if os.path.dirname(n) in {os.path.normpath(r) for r in rels}]
    if not names:
        return {}
    proc = subprocess.run(
        ["git", "cat-file", "--batch"],
        cwd=base.top,
        input="".join(f"{base.tip}:{n}\n" for n in names).encode(),
        capture_output=True,
        timeout=GIT_TIMEOUT,
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
        shown = display(path)
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
