"""The upgrade: the scratch database to head (or every head by design) through env.py.

Counts what it applied, names the revision that fails, and afterwards checks that the scratch
database's version table really holds head: env.py may have migrated somewhere else.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from migration_check.findings import Finding
from migration_check.protocol import Emit, ProgressEvent
from migration_check.worker.diagnose import Failure, env_py, reserved_revision, script_error
from migration_check.worker.envpy import run_env
from migration_check.worker.history import BaseCatch
from migration_check.worker.layouts.startfrom import NO_VERSION_ROWS

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from migration_check.worker.autogenerate.folded import Fold

__all__ = ["upgrade_to_head"]


def upgrade_to_head(
    cfg: Config,
    script: ScriptDirectory,
    url: str,
    emit: Emit,
    expected_heads: Any = None,
    problems: list[Finding] | None = None,
    verify: list[str] | None = None,
    *,
    start_from: str | None = None,
    catch: BaseCatch | None = None,
    each: bool = False,
    record: Any = None,
    fold: Fold | None = None,
) -> tuple[int, list[str]]:
    """Upgrade the empty scratch database to head through env.py; return (applied, heads).

    Several heads are upgraded together when they are branches by design (worker/history.py); else
    nothing is applied and ``problems`` gets the ``multiple_heads`` finding. ``verify``: the
    databases whose version table must hold head afterwards (a multidb project has several).
    ``each``: a progress event per revision (count and id), for a long replay on a terminal.
    ``record``: the migrated-database cache's ReplayRecord (worker/replay_record.py), if any.
    ``fold``: the comparison, run in this same run of env.py if nothing is to be applied
    (worker/autogenerate/folded.py); ``fold.ran`` says whether it was.
    """
    from migration_check.worker.history import heads_problem

    state: dict[str, Any] = {"current": None, "applied": 0, "heads": []}

    def upgrade_fn(rev: Any, context: MigrationContext) -> Any:
        # Before the revision files load: what they import is theirs, not env.py's.
        stale = record.begin(context) if record is not None else None
        # The map is read here, after env.py ran: it may set version_locations itself.
        try:
            heads = list(script.get_heads())
        except Exception as exc:  # Alembic raises KeyError for a missing down_revision
            raise script_error(exc, script) from exc
        reserved = reserved_revision(script)
        if reserved is not None:
            raise reserved
        state["heads"] = heads
        state["version_table"] = (context.version_table, context.version_table_schema)
        problem = heads_problem(script, heads, expected_heads)
        if problem is not None and problems is not None:
            problems.append(problem)
        if len(heads) > 1 and problem is not None:
            return []
        if stale is not None:
            state["stale"] = stale  # the reused database is dropped and the history replayed
            return []
        if start_from and not rev:
            raise Failure("config", NO_VERSION_ROWS.format(shown=start_from))
        steps = script._upgrade_revs("heads" if len(heads) > 1 else "head", rev)
        emit(ProgressEvent(f"upgrading {len(steps)} revision(s) to head"))
        if catch is not None:
            catch.plan(script, steps, context)
        before: Callable[[Any], None] | None = catch.before if catch is not None else None
        if each:
            before = _announcing(len(steps), emit, before)
        for step in steps:
            step.migration_fn = _tracked(step, step.migration_fn, state, before)
        if not steps and fold is not None:
            fold.compare(rev, context, state)
        return steps

    if each:  # to "upgrading N revision(s)": env.py's import of the project, to its migrations
        emit(ProgressEvent("running env.py"))
    with record.upgrade_window() if record is not None else contextlib.nullcontext():
        try:
            run_env(
                cfg,
                script,
                url,
                upgrade_fn,
                phase="upgrade",
                state=state,
                starting_rev=None,
                destination_rev="head",
                tag=None,
                **(fold.context_kw() if fold is not None else {}),
            )
        except Failure as exc:
            if fold is None or not fold.caught(exc, state):
                raise
    if record is not None:
        record.applied = [str(script.get_revision(r).path) for r in state.get("done", ())]
    for target in [] if state.get("stale") else verify or [url]:
        _verify_reached_head(target, state, script)
    if "version_table" in state:
        cfg.attributes["check_migrations.version_table"] = state["version_table"]
    return int(state["applied"]), list(state["heads"])


def _verify_reached_head(url: str, state: dict[str, Any], script: ScriptDirectory) -> None:
    """The scratch database's version table must now hold head, or env.py migrated elsewhere.

    The guard stops connections to other servers; this catches the rest: an env.py that
    never commits, runs offline, or migrates nothing while still calling run_migrations().
    """
    from sqlalchemy import column, create_engine, select, table
    from sqlalchemy.exc import DBAPIError
    from sqlalchemy.pool import NullPool

    heads = sorted(state["heads"])
    if not heads or "version_table" not in state or (len(heads) > 1 and not state["applied"]):
        return
    name, schema = state["version_table"]
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            versions = table(name, column("version_num"), schema=schema)
            found = sorted(str(v) for v in conn.execute(select(versions.c.version_num)).scalars())
    except DBAPIError:
        found = []
    finally:
        engine.dispose()
    if found != heads:
        where = f"{schema}.{name}" if schema else name
        raise Failure(
            "config",
            f"{env_py(script)}: after the upgrade the scratch database's {where} holds "
            f"{', '.join(found) or 'nothing'}, not head {', '.join(heads)}: env.py did not "
            "migrate the database the checker handed it; make it use "
            "config.attributes['connection'], sqlalchemy.url or DATABASE_URL and commit",
        )


def _announcing(
    total: int, emit: Emit, then: Callable[[Any], None] | None
) -> Callable[[Any], None]:
    """A ``before`` hook that says which revision starts, once each (multidb runs it twice)."""
    started: set[str] = set()

    def before(step: Any) -> None:
        rid = step.revision.revision
        if rid not in started:
            started.add(rid)
            emit(ProgressEvent(f"revision {rid} ({len(started)}/{total})"))
        if then is not None:
            then(step)

    return before


def _tracked(
    step: Any,
    fn: Callable[..., Any],
    state: dict[str, Any],
    before: Callable[[Any], None] | None = None,
) -> Callable[..., Any]:
    def run(**kw: Any) -> Any:
        if before is not None:
            before(step)
        state["current"] = step.revision
        result = fn(**kw)
        # A multidb env.py runs each revision once per database: count revisions, not runs.
        done = state.setdefault("done", set())
        if step.revision.revision not in done:
            done.add(step.revision.revision)
            state["applied"] += 1
        state["current"] = None
        return result

    return run
