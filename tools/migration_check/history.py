"""The history itself, worker side: which heads are by design, and do new revisions round-trip.

Two checks beyond "do the models match the migrations":

- Heads. A history whose heads carry branch labels (expand/contract layouts) is upgraded to
  ``heads`` and checked whole; only unlabeled heads that were never merged, or two heads with
  one label, are the ``multiple_heads`` finding. The ``heads`` setting names the count or the
  labels a project expects, and then only a different set is a finding.
- Round trips. The revisions a change adds (the CLI finds them with git, gitcheck.py) are
  downgraded, the schema compared through the catalog with a database upgraded only to the
  base's heads, then upgraded again. Only the new revisions: a full up/down walk of a long
  history is what makes such checks too slow to keep (pytest-alembic's issue #85).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from migration_check.diagnose import Failure, one_line
from migration_check.envpy import run_env
from migration_check.findings import Finding, Location

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import Script, ScriptDirectory

__all__ = [
    "catalog_snapshot",
    "heads_problem",
    "open_admin",
    "round_trip",
    "round_trip_scratch",
    "snapshot_differences",
]

Emit = Callable[[dict[str, Any]], None]
_MERGE_HINT = 'alembic merge heads -m "merge heads"'


def _labels(script: ScriptDirectory, head: str) -> set[str]:
    # Alembic copies a label onto the descendants of the revision declaring it, up to the
    # next branch point, so a head carries the label of the branch it ends.
    return set(script.get_revision(head).branch_labels)


def heads_problem(
    script: ScriptDirectory, heads: Sequence[str], expected: int | Sequence[str] | None
) -> Finding | None:
    """The ``multiple_heads`` finding, or None when the heads are the ones by design."""
    heads = sorted(heads)
    labels = {h: _labels(script, h) for h in heads}
    shown = ", ".join(f"{h} ({', '.join(sorted(labels[h]))})" if labels[h] else h for h in heads)
    if expected is not None:
        if isinstance(expected, int):
            ok = len(heads) == expected
            wanted = f"{expected} head{'s' if expected != 1 else ''}"
        else:
            ok = len(heads) == len(expected) and all(
                sum(label in labels[h] for h in heads) == 1 for label in expected
            )
            ok = ok and all(labels[h] & set(expected) for h in heads)
            wanted = f"one head per label {', '.join(expected)}"
        if ok:
            return None
        return Finding(
            kind="multiple_heads",
            table=None,
            name=", ".join(heads) or "base",
            message=f"the heads setting expects {wanted}; the history has {len(heads)}: "
            f"{shown or 'none'}",
            hint=f"{_MERGE_HINT}, or change heads in [tool.check-migrations]",
            source="history",
        )
    if len(heads) <= 1:
        return None
    unlabeled = [h for h in heads if not labels[h]]
    shared = sorted(
        {lb for h in heads for lb in labels[h] if sum(lb in labels[o] for o in heads) > 1}
    )
    if len(unlabeled) <= 1 and not shared:
        return None  # branches by design: every head but at most one is labelled
    if shared:
        message = (
            f"branch {', '.join(shared)} has more than one head: {shown}; merge them, or give "
            "the new branch its own label"
        )
    else:
        message = f"the history has {len(unlabeled)} heads without branch labels: {shown}"
    return Finding(
        kind="multiple_heads",
        table=None,
        name=", ".join(heads),
        message=message,
        hint=_MERGE_HINT,
        source="history",
    )


def _order(revs: Iterable[Script]) -> list[Script]:
    """Parents before children (dependencies too), among ``revs`` only; stable by id."""
    pending = {r.revision: r for r in revs}
    done: list[Script] = []
    placed: set[str] = set()
    while pending:
        ready = sorted(
            rid
            for rid, r in pending.items()
            if all(d in placed or d not in pending for d in r._all_down_revisions)
        )
        if not ready:  # a cycle: Alembic refuses such a map before we get here
            ready = sorted(pending)
        for rid in ready:
            done.append(pending.pop(rid))
            placed.add(rid)
    return done


def _def_line(path: str, name: str) -> int:
    try:
        with open(path, encoding="utf-8") as fh:
            for number, line in enumerate(fh, start=1):
                if line.startswith(f"def {name}("):
                    return number
    except OSError:
        pass
    return 1


def _run_steps(
    cfg: Config, script: ScriptDirectory, url: str, revs: list[Script], *, upgrade: bool
) -> None:
    """Apply exactly ``revs`` (in the given order) up or down through env.py."""
    from alembic.runtime.migration import MigrationStep

    state: dict[str, Any] = {"called": False, "current": None}

    def tracked(rev: Script, fn: Callable[..., Any]) -> Callable[..., Any]:
        def run(**kw: Any) -> Any:
            state["current"] = rev
            result = fn(**kw)
            state["current"] = None
            return result

        return run

    def steps_fn(_rev: Any, _context: MigrationContext) -> list[Any]:
        state["called"] = True
        steps = []
        for rev in revs:
            make = (
                MigrationStep.upgrade_from_script
                if upgrade
                else MigrationStep.downgrade_from_script
            )
            step = make(script.revision_map, rev)
            step.migration_fn = tracked(rev, step.migration_fn)
            steps.append(step)
        return steps

    run_env(
        cfg,
        script,
        url,
        state,
        phase="upgrade" if upgrade else "downgrade",
        fn=steps_fn,
        starting_rev=None,
        destination_rev=None,
        tag=None,
    )


def round_trip(
    cfg: Config,
    script: ScriptDirectory,
    url: str,
    added: Iterable[str],
    recreate: Callable[[], None],
    version_table: tuple[str, str | None],
    emit: Emit,
) -> list[Finding]:
    """Down, compare with a database at the base's heads, up again: for new revisions only.

    ``added`` are absolute paths of files new relative to the base; the database at ``url`` is
    at every head when called, and rebuilt by ``recreate`` (empty) on the way.
    """
    wanted = {os.path.realpath(p) for p in added}
    revisions = list(script.walk_revisions())
    new = [r for r in revisions if r.path and os.path.realpath(r.path) in wanted]
    if not new:
        return []
    new_ids = {r.revision for r in new}
    old = [r for r in revisions if r.revision not in new_ids]
    if any(set(r._all_down_revisions) & new_ids for r in old):
        return []  # an old revision now builds on a new one: no base state to go back to
    names = ", ".join(sorted(new_ids))
    first = sorted(new, key=lambda r: r.revision)[0]
    where = Location(os.path.relpath(first.path), _def_line(first.path, "downgrade"))
    up = _order(new)
    emit({"type": "progress", "message": f"round trip of {names}: downgrade, compare, upgrade"})
    try:
        _run_steps(cfg, script, url, list(reversed(up)), upgrade=False)
    except Failure as exc:
        if exc.kind != "migration":
            raise
        return [_finding("downgrade_failed", names, f"downgrade failed: {exc.message}", where)]
    downgraded = catalog_snapshot(url, version_table)
    findings: list[Finding] = []
    try:
        _run_steps(cfg, script, url, up, upgrade=True)
    except Failure as exc:
        if exc.kind != "migration":
            raise
        findings.append(
            _finding(
                "reupgrade_failed",
                names,
                f"upgrade after the downgrade failed: {exc.message}",
                where,
            )
        )
    recreate()
    _run_steps(cfg, script, url, _order(old), upgrade=True)
    differences = snapshot_differences(downgraded, catalog_snapshot(url, version_table))
    if differences:
        shown = "; ".join(differences[:5]) + (
            f"; and {len(differences) - 5} more" if len(differences) > 5 else ""
        )
        findings.insert(
            0,
            _finding(
                "downgrade_incomplete",
                names,
                f"downgrade does not undo the upgrade: {shown}",
                where,
            ),
        )
    return findings


def open_admin(req: dict[str, Any]) -> Any:
    """A maintenance connection for rebuilding the scratch database; open it before the guard."""
    import psycopg

    try:
        return psycopg.connect(
            **req["admin_conninfo"], autocommit=True, connect_timeout=req["connect_timeout"]
        )
    except psycopg.OperationalError as exc:
        raise Failure(
            "server", f"cannot connect to {req['server_label']}: {one_line(exc)}"
        ) from exc


def round_trip_scratch(
    cfg: Config, script: ScriptDirectory, req: dict[str, Any], admin: Any, emit: Emit
) -> list[Finding]:
    """``round_trip`` on the worker's scratch database, rebuilt empty over ``admin``."""
    from psycopg import sql

    def recreate() -> None:
        name = sql.Identifier(req["database"])
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(name))

    version_table = cfg.attributes.get("check_migrations.version_table", ("alembic_version", None))
    try:
        return round_trip(
            cfg, script, req["sync_url"], req["history"]["added"], recreate, version_table, emit
        )
    finally:
        admin.close()


def _finding(kind: str, names: str, message: str, where: Location) -> Finding:
    # The upgrade's advice ("the history does not build from empty") is wrong here: keep the
    # revision and the database error only.
    cut = message.find(" (SQLSTATE ")
    if cut != -1 and ")" in message[cut:]:
        message = message[: message.index(")", cut) + 1]
    return Finding(
        kind=kind,
        table=None,
        name=names,
        message=message,
        location=where,
        hint=f"make downgrade() of {names} undo exactly what upgrade() does",
        source="history",
    )


# The schema as the catalog prints it, one query per kind of object; keys name the object.
_SYSTEM = (
    "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' "
    "AND n.nspname NOT LIKE 'pg\\_temp%' "
    # Objects an extension owns come and go with the extension, which is listed itself.
    "AND NOT EXISTS (SELECT 1 FROM pg_depend dep WHERE dep.objid = {oid} AND dep.deptype = 'e')"
)
_QUERIES = {
    "schema": "SELECT n.nspname, '' FROM pg_namespace n WHERE " + _SYSTEM.format(oid="n.oid"),
    "extension": "SELECT extname, extversion FROM pg_extension",
    "relation": "SELECT n.nspname || '.' || c.relname, c.relkind::text FROM pg_class c "
    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r','p','v','m','f','S') "
    "AND " + _SYSTEM.format(oid="c.oid"),
    "column": "SELECT n.nspname || '.' || c.relname || '.' || a.attname, "
    "concat_ws(' ', format_type(a.atttypid, a.atttypmod), "
    "CASE WHEN a.attnotnull THEN 'NOT NULL' END, "
    "'DEFAULT ' || pg_get_expr(d.adbin, d.adrelid), "
    "CASE a.attidentity WHEN 'a' THEN 'IDENTITY ALWAYS' WHEN 'd' THEN 'IDENTITY BY DEFAULT' END, "
    "CASE WHEN a.attgenerated <> '' THEN 'GENERATED' END, "
    "'COMMENT ' || quote_literal(col_description(c.oid, a.attnum))) "
    "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
    "JOIN pg_namespace n ON n.oid = c.relnamespace "
    "LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
    "WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r','p','v','m','f') "
    "AND " + _SYSTEM.format(oid="c.oid"),
    "constraint": "SELECT n.nspname || '.' || c.relname || '.' || con.conname, "
    "pg_get_constraintdef(con.oid) FROM pg_constraint con "
    "JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE " + _SYSTEM.format(oid="c.oid"),
    "index": "SELECT n.nspname || '.' || t.relname || '.' || c.relname, pg_get_indexdef(c.oid) "
    "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid "
    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE " + _SYSTEM.format(oid="c.oid"),
    "type": "SELECT n.nspname || '.' || t.typname, t.typtype::text || ' ' || coalesce(("
    "SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder) FROM pg_enum e "
    "WHERE e.enumtypid = t.oid), format_type(t.typbasetype, t.typtypmod)) FROM pg_type t "
    "JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.typtype IN ('e', 'd') "
    "AND " + _SYSTEM.format(oid="t.oid"),
    "view": "SELECT n.nspname || '.' || c.relname, pg_get_viewdef(c.oid) FROM pg_class c "
    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('v', 'm') "
    "AND " + _SYSTEM.format(oid="c.oid"),
    "function": "SELECT n.nspname || '.' || p.proname || '(' "
    "|| pg_get_function_identity_arguments(p.oid) || ')', md5(pg_get_functiondef(p.oid)) "
    "FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE p.prokind IN ('f','p') "
    "AND " + _SYSTEM.format(oid="p.oid"),
    "trigger": "SELECT t.tgrelid::regclass::text || '.' || t.tgname, pg_get_triggerdef(t.oid) "
    "FROM pg_trigger t WHERE NOT t.tgisinternal",
}


def catalog_snapshot(url: str, version_table: tuple[str, str | None]) -> dict[str, str]:
    """``{"kind name": definition}`` of everything a revision can create, as PostgreSQL prints it.

    Alembic's version table is left out: its rows are the one thing a downgrade must change.
    """
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    table, schema = version_table
    engine = create_engine(url, poolclass=NullPool)
    snapshot: dict[str, str] = {}
    try:
        with engine.connect() as conn:
            where = schema or str(conn.execute(text("SELECT current_schema()")).scalar())
            skip = f"{where}.{table}"
            for kind, query in _QUERIES.items():
                for name, definition in conn.execute(text(query)):
                    if name == skip or str(name).startswith(skip + "."):
                        continue
                    snapshot[f"{kind} {name}"] = str(definition)
    finally:
        engine.dispose()
    return snapshot


def snapshot_differences(downgraded: dict[str, str], base: dict[str, str]) -> list[str]:
    """What the downgraded database has that the base does not, and the reverse; sorted."""
    out = []
    for key in sorted(set(downgraded) | set(base)):
        if key not in base:
            out.append(f"{key} is left behind")
        elif key not in downgraded:
            out.append(f"{key} is missing")
        elif downgraded[key] != base[key]:
            out.append(f"{key} is {downgraded[key]!r}, the base has {base[key]!r}")
    return out
