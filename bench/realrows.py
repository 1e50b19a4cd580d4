"""The rows of the real long histories (issue 20; the projects are in bench/realhist.py).

Per project, against a bare ``alembic check`` (the venv's own script) on a database the bench
migrated to head on its own server:

- a model edited: a model-only mutation (a new nullable column) kept for the row, the model
  file's content changed again before each check so no verdict is served; exit 1 each time;
- history reused: nothing edited, the verdict cache off, so the migrated database is served;
  exit 0 (the upstream's own drift recorded by ``check-migrations baseline`` first, as a user
  adopting the checker does);
- a model edited with its new revision on top (the commit that matters most): exit 0; no
  target, the key changes with both. The peer runs with that revision out of the way (its
  database is at the upstream head).

The peer sees the same models (the project's source, installed editable), so with the mutation
in it finds the new column and exits non-zero: the same work as at head, plus reporting one
diff.

Then one ``-v`` check of each kind, whose time stamps split the check into phases, and every
scenario both ways (the caches, then ``--no-cache``; exit code and findings compared).
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg
from common import Agreement, Row, alternate, caches, run, touch_model
from psycopg import sql
from realhist import (
    Installed,
    RealProject,
    edited,
    install,
    project_env,
    revision_on_top,
    revisions,
    versions_dir,
    write_project,
)

from migration_check.postgres.reach import reachable_bindir
from migration_check.postgres.server import SUPERUSER, ThrowawayServer

PEER = "bare `alembic check` on it, at head"
Phases = list[tuple[str, str, float | None]]  # (project, phase, seconds: None for a note)


@dataclass
class RealProjectSetup:
    installed: Installed
    project: Path
    env: dict[str, str]  # the checker's (private caches)
    peer_env: dict[str, str]
    check: list[str]
    count: int
    head: str


def _create_database(server: ThrowawayServer, name: str) -> str:
    with psycopg.connect(**server.admin_conninfo(), autocommit=True) as conn:  # type: ignore[arg-type]
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return f"postgresql+psycopg2://{SUPERUSER}@/{name}?host={server.socket_dir}"


def _base_dump(
    installed: Installed, project: Path, env: dict[str, str], server: ThrowawayServer
) -> Path:
    """mlflow's base: its initial models' create_all, then its first revision (cached)."""
    dump = installed.venv / ".bench-base.sql"
    if dump.is_file():
        return dump
    url = _create_database(server, "bench_base")
    code = (
        "import sys, sqlalchemy as sa\n"
        "from alembic import command\nfrom alembic.config import Config\n"
        "from alembic.script import ScriptDirectory\n"
        "from mlflow.store.tracking.dbmodels.initial_models import Base\n"
        "sa_engine = sa.create_engine(sys.argv[1]); Base.metadata.create_all(sa_engine)\n"
        "cfg = Config('alembic.ini'); cfg.set_main_option('sqlalchemy.url', sys.argv[1])\n"
        "(first,) = ScriptDirectory.from_config(cfg).get_bases()\n"
        "command.upgrade(cfg, first)\n"
    )
    run([str(installed.python), "-c", code, url], cwd=project, env=env)
    bindir = reachable_bindir(server.binaries, server.user)
    conn = ["-h", server.socket_dir, "-U", SUPERUSER, "-d", "bench_base", "--no-owner"]
    schema = run([str(bindir / "pg_dump"), "--schema-only", *conn], cwd=project, env=env).out
    rows = run(
        [str(bindir / "pg_dump"), "--data-only", "--table=alembic_version", *conn],
        cwd=project,
        env=env,
    ).out
    dump.write_text(schema + rows)
    return dump


def setup(
    real: RealProject, tmp: Path, base_env: dict[str, str], server: ThrowawayServer
) -> RealProjectSetup:
    installed = install(real)
    work = tmp / real.name
    work.mkdir()
    env = project_env(installed, work, base_env)
    project = write_project(installed, work, env)
    count, head = revisions(installed, project, env)
    check = [*installed.checker]
    name = f"peer_{zlib.crc32(real.name.encode()):08x}"
    url = _create_database(server, name)
    if real.base_dump:
        dump = _base_dump(installed, project, env, server)
        check += ["--start-from", str(dump)]
        psql = reachable_bindir(server.binaries, server.user) / "psql"
        run(
            [str(psql), "-q", "-v", "ON_ERROR_STOP=1", "-h", server.socket_dir, "-U", SUPERUSER,
             "-d", name, "-f", str(dump)],
            cwd=project,
            env=env,
        )  # fmt: skip
    rest = url.split("://", 1)[1]
    peer_env = {**env, **{var: f"{driver}://{rest}" for var, driver in real.peer_urls.items()}}
    run([str(installed.alembic), "upgrade", "head"], cwd=project, env=peer_env)
    # At head: exit 0, or the upstream's own drift.
    run([str(installed.alembic), "check"], cwd=project, env=peer_env, ok=(0, 255))
    ck_env = {**env, **caches(tmp, real.name)}
    # The upstream's own drift, recorded as a user adopting the checker does: clean exits 0.
    run([check[0], check[1], "baseline", *check[2:]], cwd=project, env=ck_env)
    run(["git", "add", "-A"], cwd=project, env=env)
    run(["git", "commit", "-q", "-m", "baseline"], cwd=project, env=_git(env))
    run(check, cwd=project, env=ck_env)  # fills the caches and the bytecode
    return RealProjectSetup(installed, project, ck_env, peer_env, check, count, head)


def _git(env: dict[str, str]) -> dict[str, str]:
    who = {"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com"}
    return {**env, **who, "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "b@example.com"}


def _peer(s: RealProjectSetup, *, drift: bool = False) -> float:
    """Bare ``alembic check``; with the mutation in, it finds the new column (exits 255)."""
    out = run([str(s.installed.alembic), "check"], cwd=s.project, env=s.peer_env, ok=(0, 255))
    if (out.rc != 0) != (drift or s.installed.project.upstream_drift):
        raise RuntimeError(f"alembic check exited {out.rc} {'with' if drift else 'without'} drift")
    return out.seconds


def _mutation(s: RealProjectSetup) -> tuple[Path, str, str]:
    m = s.installed.project.mutation
    return s.installed.model(s.project), m.anchor, m.anchor + m.line


class _OnTop:
    """A new revision after the upstream head, rewritten for each check (a new key each time)."""

    def __init__(self, s: RealProjectSetup) -> None:
        self.s = s
        self.path = versions_dir(s.installed, s.project) / "bench0top_on_top.py"
        self.n = 0

    def write(self) -> None:
        self.n += 1
        self.path.write_text(revision_on_top(self.s.installed, self.s.head, self.n))
        # Staged, as in the commit that adds it (the history is the project's, in git).
        self._git("add", str(self.path))

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
        self._git("rm", "-q", "--cached", "--ignore-unmatch", str(self.path))

    def _git(self, *args: str) -> None:
        run(["git", *args], cwd=self.s.project, env=self.s.env)


def _expect(s: RealProjectSetup, args: list[str], env: dict[str, str], rc: int) -> float:
    out = run([*s.check, *args], cwd=s.project, env=env, ok=(0, 1))
    if out.rc != rc:
        raise RuntimeError(f"{' '.join(s.check)}: exit {out.rc}, not {rc}:\n{out.out[-3000:]}")
    return out.seconds


def project_rows(s: RealProjectSetup, reps: int, progress: Callable[[str], None]) -> list[Row]:
    real = s.installed.project
    label = f"{real.name} ({s.count} revisions)"
    rows: list[Row] = []
    model, old, new = _mutation(s)
    edits = [0]
    no_verdict = {**s.env, "CHECK_MIGRATIONS_VERDICT_CACHE": "0"}

    progress(f"{real.name}: a model edited vs bare alembic check")
    with edited(model, old, new):

        def changed() -> float:
            touch_model(model, edits)
            return _expect(s, [], s.env, 1)

        ours, theirs = alternate(reps, changed, lambda: _peer(s, drift=True))
        rows.append(Row(f"{label}: a model edited", ours, PEER, theirs, 1.0))

    progress(f"{real.name}: history reused vs bare alembic check")
    _expect(s, [], no_verdict, 0)
    ours, theirs = alternate(reps, lambda: _expect(s, [], no_verdict, 0), lambda: _peer(s))
    rows.append(Row("  same, history reused (verdict cache off, no edit)", ours, PEER, theirs, 0.8))

    progress(f"{real.name}: a model edited with its new revision on top")
    on_top = _OnTop(s)
    with edited(model, old, new):

        def with_revision() -> float:
            touch_model(model, edits)
            on_top.write()
            try:
                return _expect(s, [], s.env, 0)
            finally:
                on_top.remove()

        try:
            ours, theirs = alternate(reps, with_revision, lambda: _peer(s, drift=True))
        finally:
            on_top.remove()
    rows.append(Row("  same, a model edited with its new revision", ours, PEER, theirs, None))
    for row in rows:  # as measured: a run stopped later still leaves these
        progress(f"{row.name.strip()}: {row.ours:.2f} s vs {row.peer:.2f} s ({row.ratio:.2f})")
    return rows


_STAMP = re.compile(r"^check-migrations: (.*) \((\d+\.\d+)s\)$")
_QUIET = re.compile(r"^revision \S+ \(\d+/\d+\)$")  # one per revision: the upgrade's own
_IMPORTS = re.compile(r"^worker ready: interpreter start and imports (\d+\.\d+)s")
# What each stamp starts (to the next one): the costs issue 20 asks the bench to name.
_COSTS = (
    ("starting a throwaway PostgreSQL", "server copy and start"),
    ("initialising a PostgreSQL cluster", "initdb (no cluster cached yet)"),
    ("the throwaway server is up", "request sent, the worker's answer awaited"),
    ("worker ready", "cache validation, config (the worker's imports overlapped the server)"),
    ("loading ", "--start-from's dump loaded by psql"),
    ("using cached migrated database", "cache validation, config"),
    ("replaying the history", "cache validation, config"),
    ("cached migrated database is stale", "cache validation, config"),
    ("running env.py", "env.py's first run: its import of the project"),
    ("upgrading 0 revision(s)", "env.py at head: the no-op upgrade's end"),
    ("upgrading ", "the upgrade (the history replayed)"),
    ("copying the migrated database for the cache", "the snapshot for the cache"),
    # After a replay, env.py's second run; at head, the comparison folded into the first.
    ("comparing the database with the models", "env.py configured for the comparison"),
    ("env.py configured again", "autogenerate's comparison"),
    ("comparing the catalogs", "catalog build (waiting for it)"),
    ("create_all() on the models failed", "catalog build: the retry (a failed build)"),
    ("the retry failed too", "catalog build: statement by statement"),
    ("the models' database is built", "catalog read and comparison"),
    ("the retry built", "catalog read and comparison"),
    ("cached the migrated database", "report, server stop"),
)


def _cost(text: str) -> str:
    for prefix, cost in _COSTS:
        if text.startswith(prefix):
            return f"{cost} [{text[:60]}]"
    return text


def phases(s: RealProjectSetup, what: str, args: list[str], env: dict[str, str]) -> Phases:
    """One ``-v`` check's time stamps as phases: each from its line to the next stamped one."""
    out = run([*s.check, "-v", *args], cwd=s.project, env=env, ok=(0, 1))
    stamps = [(m[1], float(m[2])) for line in out.err.splitlines() if (m := _STAMP.match(line))]
    stamps = [(text, t) for text, t in stamps if not _QUIET.match(text)]
    name = f"{s.installed.project.name}, {what}"
    first = "process start to the first stamp (CLI, git, cache keys)"
    result: Phases = [(name, first, stamps[0][1])]
    ends = [*stamps[1:], ("the process ending (report, server stop)", out.seconds)]
    twice = 0.0
    for (text, t), (_, t_next) in zip(stamps, ends, strict=True):
        result.append((name, _cost(text), t_next - t))
        if _cost(text).startswith(("env.py at head", "env.py configured")):
            twice += t_next - t
        if found := _IMPORTS.match(text):
            result.append(
                (name, "  worker: interpreter start and imports (overlapped)", float(found[1]))
            )
    texts = [text for text, _ in stamps]
    if any(t.startswith("upgrading 0 revision(s)") for t in texts):
        result.append((name, "env.py at head: no-op upgrade to comparison (one run)", twice))
    result.append((name, "total (wall clock, one -v run)", out.seconds))
    if any(t.startswith("using cached migrated database") for t in texts):
        result.append((name, "the migrated database was reused", None))
    else:
        said = ("not caching", "cached migrated database is", "replaying the history", "no cached")
        why = [t for t in texts if t.startswith(said)]
        result.append((name, f"history replayed: {'; '.join(why) or 'no reason printed'}", None))
    return result


def project_phases(s: RealProjectSetup) -> Phases:
    model, old, new = _mutation(s)
    no_verdict = {**s.env, "CHECK_MIGRATIONS_VERDICT_CACHE": "0"}
    with edited(model, old, new):
        touch_model(model, [9000])
        found = phases(s, "a model edited", [], s.env)
    return found + phases(s, "history reused", [], no_verdict)


def _verdict(s: RealProjectSetup, args: list[str]) -> tuple[int, list[object]]:
    out = run([*s.check, "--format", "json", *args], cwd=s.project, env=s.env, ok=(0, 1))
    findings: list[object] = json.loads(out.out)["findings"]
    return out.rc, findings


def _both_ways(s: RealProjectSetup) -> tuple[bool, str]:
    # Twice with the caches: the first may store a verdict, the second be served it.
    cached, again, fresh = _verdict(s, []), _verdict(s, []), _verdict(s, ["--no-cache"])
    if again != cached:
        return False, f"exit {cached[0]} then {again[0]} (caches) / exit {fresh[0]} (--no-cache)"
    return cached == fresh, f"exit {cached[0]} (caches) / exit {fresh[0]} (--no-cache)"


def project_agreement(s: RealProjectSetup) -> Agreement:
    name = s.installed.project.name
    model, old, new = _mutation(s)
    found: Agreement = [(f"{name}, clean (baselined)", *_both_ways(s))]
    with edited(model, old, new):
        found.append((f"{name}, a model edited", *_both_ways(s)))
        on_top = _OnTop(s)
        on_top.write()
        try:
            found.append((f"{name}, a model edited with its revision", *_both_ways(s)))
        finally:
            on_top.remove()
    return found


def real_rows(
    tmp: Path,
    base_env: dict[str, str],
    server: ThrowawayServer,
    reps: int,
    progress: Callable[[str], None],
    projects: tuple[RealProject, ...],
) -> tuple[list[Row], Agreement, Phases]:
    rows: list[Row] = []
    agreement: Agreement = []
    found: Phases = []
    for real in projects:
        progress(f"{real.name}: venv (cached under bench/.work), project, peer database")
        s = setup(real, tmp, base_env, server)
        rows += project_rows(s, reps, progress)
        progress(f"{real.name}: phases (-v) and verdicts both ways")
        found += project_phases(s)
        agreement += project_agreement(s)
    return rows, agreement, found
