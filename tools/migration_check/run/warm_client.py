"""The warm server seen from the CLI (``--keep-warm``): find it, lock it, start it, retire it.

With ``keep_warm`` on, a check's scratch database lives in a server a keeper (postgres/warm.py)
keeps up between checks, so a warm check pays no server copy, start or stop. Its keeper is found,
locked and started by run/warm_keeper.py (files in ``check-migrations-servers``, beside the
resident workers' directory, named by a hash of what shapes the server). One check uses it at a
time: a check that finds it busy runs its own throwaway server, as without ``--keep-warm``, so the
shared state a check changes is always its own.

Migrated databases become template databases inside the warm cluster (``s-<key>.tpl/``, one
entry each, in the cache's format and chosen by its rules, caches/migrated.py): a reuse is one
``CREATE DATABASE ... TEMPLATE``. They refuse connections, so nothing reaches them but a copy.

Why a warm check's verdict is a fresh one's: each check's scratch database is a copy of a
template (or of template1) as on a fresh server, and the cluster's shared state (roles, settings,
tablespaces, databases: postgres/cluster_state.py) is compared before and after each check with
what it was when the server started: a check that changed it retires the server (when the check
just migrated a history, its cluster is kept as a migrated-database entry first, as a throwaway
server's is, so the next keeper starts from it with that state). A replay from empty runs only on a
server whose shared state is a fresh cluster's. Whatever goes wrong here ends in the ordinary
throwaway server: keep-warm may make a check faster, never fail it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from migration_check.caches.dirs import cache_base_dir
from migration_check.caches.migrated import (
    FORMAT,
    CachePlan,
    Entry,
    choose_entry,
    entry_name,
    max_entries,
)
from migration_check.errors import ServerError
from migration_check.postgres.cluster_state import cluster_fingerprint, same_cluster
from migration_check.postgres.server import PORT, SUPERUSER
from migration_check.postgres.warm import key_files
from migration_check.postgres.wire import WireConnection, quote_ident
from migration_check.processes import proc_start_time, terminate
from migration_check.run.resident_client import warm_dir
from migration_check.run.resources import RunResources
from migration_check.run.warm_keeper import (
    SERVERS_DIR,
    keeper_pid,
    send_signal,
    server_key,
    start_keeper,
    sweep_dead,
    take_lock,
)

__all__ = ["WarmLease", "open_warm"]


@dataclass
class _Pick:
    """What a check does on the warm server: copy a template, replay, or restart it from
    ``template`` (a migrated-database entry's data directory, or None: the initialised cluster)."""

    entry: Entry | None = None
    restart: bool = False
    template: Path | None = None


class WarmLease:
    """This check's exclusive use of the warm server, from its lock to ``finish``."""

    def __init__(
        self, key: str, files: dict[str, Path], lock: int, pid: int, state: dict[str, Any]
    ) -> None:
        self.key = key
        self.files = files
        self.retired = False
        self.lock = lock
        self.pid = pid
        self.run_dir = Path(state["run_dir"])
        # A template's copy takes a while for a large schema (0.5 s for 800 tables, idle).
        self.conn = WireConnection(str(self.run_dir), PORT, SUPERUSER, "postgres", timeout=120)
        self.baseline: dict[str, Any] = {}
        self.pick = _Pick()

    # -- state kept beside the templates ----------------------------------------------------

    def _baseline_path(self) -> Path:
        return self.files["templates"] / "baseline.json"

    def load_baseline(self) -> str | None:
        """Why the server's shared state is not what it was at its start (None: it is)."""
        try:
            self.baseline = json.loads(self._baseline_path().read_text())
        except (OSError, ValueError):
            return "it holds no record of its shared state"
        # A check SIGKILLed mid-way left its scratch database (and maybe more, which stays).
        self._drop_leftovers()
        return same_cluster(self.baseline["fingerprint"], cluster_fingerprint(self.conn))

    def _save_baseline(self, fingerprint: dict[str, str] | None = None) -> None:
        self.baseline["fingerprint"] = fingerprint or cluster_fingerprint(self.conn)
        tmp = self._baseline_path().with_suffix(".tmp")
        tmp.write_text(json.dumps(self.baseline))
        tmp.rename(self._baseline_path())

    def _templates(self) -> dict[str, str]:
        """Entry name -> its template database in this cluster."""
        found = {}
        for meta in self.files["templates"].glob("migrated-*/meta.json"):
            with contextlib.suppress(OSError, ValueError, KeyError):
                found[meta.parent.name] = str(json.loads(meta.read_text())["database"])
        return found

    def _register(self, name: str, meta: dict[str, Any]) -> None:
        database = str(meta["database"])
        self.conn.query(f"ALTER DATABASE {quote_ident(database)} WITH ALLOW_CONNECTIONS false")
        entry = self.files["templates"] / name
        entry.mkdir(mode=0o700, exist_ok=True)
        (entry / "meta.json").write_text(
            json.dumps({**meta, "format": FORMAT, "created": time.time()}, sort_keys=True)
        )

    def started(self, plan: CachePlan | None, state: dict[str, Any]) -> None:
        """A new server: register the entry it started from, record its shared state."""
        # No check connects to template1 (databases are copied from it): closed, nothing
        # can change what every new scratch database starts from.
        self.conn.query("ALTER DATABASE template1 WITH ALLOW_CONNECTIONS false")
        added: frozenset[str] = frozenset()
        if state.get("template_used") and plan is not None and plan.entry is not None:
            self._register(plan.entry.path.name, plan.entry.meta)
            added = frozenset({plan.entry.database})
        fresh_path = cache_base_dir() / f"warm-fresh-{self.key}.json"
        now = cluster_fingerprint(self.conn)
        if not added:
            fresh = True
            with contextlib.suppress(OSError):
                fresh_path.write_text(json.dumps(now))
        else:
            try:
                known = json.loads(fresh_path.read_text())
            except (OSError, ValueError):
                known = None
            # An entry's cluster holds what its history created (roles, say): replaying
            # another history from empty on it would not be a fresh server's replay.
            fresh = known is not None and same_cluster(known, now, added=added) is None
        self.baseline = {"fresh": fresh}
        self._save_baseline()

    # -- one check -----------------------------------------------------------------------

    def choose(self, plan: CachePlan | None, ini: Path, environ: dict[str, str]) -> _Pick:
        disk = plan.entry if plan is not None else None
        warm = (
            choose_entry(plan.scope, ini, environ, base=self.files["templates"])
            if plan is not None
            else None
        )

        def length(entry: Entry) -> int:
            return len(entry.meta.get("revisions", []))

        if warm is not None and (disk is None or length(warm) >= length(disk)):
            return _Pick(entry=warm)
        if disk is not None:
            return _Pick(restart=True, template=disk.data)
        if self.baseline.get("fresh"):
            return _Pick()
        return _Pick(restart=True)

    def prepare(self, database: str, plan: CachePlan | None) -> None:
        """The scratch database: a copy of the chosen template, or none (the worker creates it)."""
        entry = self.pick.entry
        if plan is None:
            return
        if entry is None:
            plan.entry = None
            return
        strategy = " STRATEGY FILE_COPY" if self.conn.server_version_num >= 150000 else ""
        self.conn.query(
            f"CREATE DATABASE {quote_ident(database)} TEMPLATE "
            f"{quote_ident(str(entry.meta['database']))}{strategy}"
        )
        plan.entry = Entry(entry.path, {**entry.meta, "database": database})

    def finish(self, plan: CachePlan | None, keep_warm: float, progress: Any) -> None:
        """After the check: drop its databases, keep its template, retire the server if the
        check changed its shared state. Never raises."""
        try:
            added: set[str] = set()
            store = plan.store if plan is not None else None
            if plan is not None and store is not None:
                name = entry_name(store, plan.scope)
                if name in self._templates():  # the same history, already held
                    store = None
                else:
                    self._register(name, store)
                    added.add(str(store["database"]))
            self._drop_leftovers()
            after = cluster_fingerprint(self.conn)
            why = same_cluster(self.baseline["fingerprint"], after, added=frozenset(added))
            if why is None:
                self._save_baseline(None if self._prune() else after)
                self.files["used"].write_text(f"{keep_warm}\n")
                self._log("served check")
                send_signal(self.pid, signal.SIGUSR2)  # the keeper reads the idle time again
                return
            progress(f"keep-warm: the check changed the server ({why}); retiring it")
            self._log(f"retired: {why}")
            if plan is not None and store is not None and added:
                self._retire_and_store(plan, store, progress)
            else:
                self.retire()
        except (ServerError, OSError, ValueError, KeyError) as exc:
            progress(f"keep-warm: retiring the warm server: {exc}")
            self.retire()
        finally:
            self.release()

    def _log(self, message: str) -> None:
        """A line in the keeper's log (tests and -v readers count what it served)."""
        with contextlib.suppress(OSError), open(self.files["log"], "a") as log:
            log.write(f"{time.strftime('%H:%M:%S')} check[{os.getpid()}]: {message}\n")

    def _drop_leftovers(self) -> None:
        held = set(self._templates().values())
        rows = self.conn.query(
            "SELECT datname FROM pg_database WHERE datname LIKE 'check\\_migrations\\_%'"
        )
        for (name,) in rows:
            if name is not None and name not in held:
                self.conn.query(f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")

    def _prune(self) -> bool:
        """Keep as many templates as the cache keeps entries, the most recently used; whether
        any was dropped."""
        entries = sorted(
            self.files["templates"].glob("migrated-*/meta.json"),
            key=lambda p: p.stat().st_mtime,
            reverse=True,
        )
        for meta in entries[max_entries() :]:
            database = json.loads(meta.read_text())["database"]
            self.conn.query(f"DROP DATABASE IF EXISTS {quote_ident(database)} WITH (FORCE)")
            shutil.rmtree(meta.parent, ignore_errors=True)
        return len(entries) > max_entries()

    def _retire_and_store(self, plan: CachePlan, store: dict[str, Any], progress: Any) -> None:
        """Keep this cluster (the history just migrated, with what it created) as an entry."""
        from migration_check.caches.migrated import store_entry

        keep = str(store["database"])
        for database in self._templates().values():
            if database != keep:
                self.conn.query(f"DROP DATABASE IF EXISTS {quote_ident(database)} WITH (FORCE)")
        for database in (keep, "template1"):
            self.conn.query(f"ALTER DATABASE {quote_ident(database)} WITH ALLOW_CONNECTIONS true")
        self.conn.close()
        self.retired = True
        # This process owns the directory from here: a sweep must not take it for a dead run's.
        (self.run_dir / "owner").write_text(f"{os.getpid()} {proc_start_time(os.getpid())}\n")
        terminate(self.pid, signal.SIGUSR1, timeout=30.0)
        try:
            if (self.run_dir / "kept").is_file() and store_entry(
                self.run_dir / "data", store, plan.scope
            ):
                progress("cached the migrated database for later runs")
        finally:
            shutil.rmtree(self.run_dir, ignore_errors=True)

    def retire(self) -> None:
        """Stop the warm server (its keeper removes its files); the next check starts another."""
        self.conn.close()
        self.retired = True
        terminate(self.pid, signal.SIGTERM)

    def release(self) -> None:
        """The end of this check's use; a retired server's lock file goes too (still held)."""
        self.conn.close()
        if self.retired:
            with contextlib.suppress(OSError):
                if os.fstat(self.lock).st_ino == os.stat(self.files["lock"]).st_ino:
                    self.files["lock"].unlink()
        with contextlib.suppress(OSError):
            os.close(self.lock)


def open_warm(
    resources: RunResources,
    plan: CachePlan | None,
    ini: Path,
    keep_warm: float,
    progress: Any,
    database: str,
) -> WarmLease | None:
    """This check's lease on the warm server (started when none is alive) with ``database``
    ready on it (a template's copy, or none: the worker creates it), or None: go cold."""
    lease = _open(resources, plan, ini, keep_warm, progress)
    if lease is None:
        return None
    try:
        lease.prepare(database, plan)
    except (ServerError, OSError, KeyError) as exc:
        progress(f"keep-warm: retiring the warm server ({exc}); starting a throwaway one")
        lease.retire()
        lease.release()
        return None
    return lease


def _open(
    resources: RunResources,
    plan: CachePlan | None,
    ini: Path,
    keep_warm: float,
    progress: Any,
) -> WarmLease | None:
    base, why = warm_dir(name=SERVERS_DIR)
    if base is None:
        progress(f"keep-warm: no warm server ({why})")
        return None
    key = server_key(resources)
    files = key_files(base, key)
    lock = take_lock(files["lock"])
    if lock is None:
        progress("keep-warm: the warm server is in use by another check; starting another")
        return None
    environ = resources.worker_environ()
    lease: WarmLease | None = None
    template: Path | None = None
    started = 0
    try:
        pid, state = keeper_pid(files)
        if pid:
            try:
                lease = WarmLease(key, files, lock, pid, state)
                stale = lease.load_baseline()
            except ServerError as exc:
                stale = str(exc)
            if stale is None and lease is not None:
                lease.pick = lease.choose(plan, ini, environ)
                if not lease.pick.restart:
                    progress(f"using the warm PostgreSQL (keeper pid {pid})")
                    return lease
                template = lease.pick.template
                stale = "a migrated database it does not hold is newer"
            progress(f"keep-warm: restarting the warm server: {stale}")
            if lease is not None:
                lease.retire()
            else:
                terminate(pid, signal.SIGTERM)
        elif plan is not None and plan.entry is not None:
            template = plan.entry.data
        sweep_dead(base)
        state = start_keeper(base, key, resources, keep_warm, template)
        pid = int(state["pid"])
        started = pid
        lease = WarmLease(key, files, lock, pid, state)
        lease.started(plan if template is not None else None, state)
        lease.pick = lease.choose(plan, ini, environ)
        if lease.pick.restart:  # the entry it started from could not be copied
            lease.pick = _Pick()
        progress(f"keep-warm: started a warm server (keeper pid {pid})")
        return lease
    except (ServerError, OSError, ValueError, KeyError) as exc:
        progress(f"keep-warm: no warm server ({exc}); starting a throwaway one")
        if lease is not None:
            lease.retire()
            lease.release()
        else:
            if started:  # it started but cannot be spoken to: it must not wait for its idle time
                terminate(started, signal.SIGTERM)
            with contextlib.suppress(OSError):
                os.close(lock)
        return None
