"""Where the scratch database lives: the throwaway server, or one made on --database-url."""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from migration_check.caches.migrated import CachePlan
from migration_check.errors import ConfigError
from migration_check.interrupts import add_cleanup_note
from migration_check.postgres.scratch import ScratchOwner, create_scratch
from migration_check.postgres.server import (
    PORT,
    SUPERUSER,
    ThrowawayServer,
    signals_held,
)
from migration_check.run.project import DEFAULT_DRIVER, preflight
from migration_check.run.resources import RunResources
from migration_check.run.worker_process import Progress
from migration_check.settings import Settings
from migration_check.urls import DbUrl, mask_passwords, parse_url

if TYPE_CHECKING:  # sockets and the keeper are imported only when keep-warm is on
    from migration_check.run.warm_client import WarmLease

__all__ = ["provision"]

_SHAPE = "postgresql://user:password@host:port/database"
_SCHEME = re.compile(r"^postgres(?:ql)?(?:\+[a-z0-9_]+)?$")


def _parse_database_url(raw: str) -> DbUrl:
    """The URL, or a ConfigError saying what is malformed and the shape expected."""
    # The URL itself is not echoed: when malformed, no mask can tell where its password ends.
    if "://" not in raw:
        try:
            return parse_url(raw)  # raises: "not a URL (expected ...)"
        except ValueError as exc:
            raise ConfigError(f"--database-url: {exc}") from exc
    scheme = raw.split("://", 1)[0]
    if not _SCHEME.match(scheme):
        raise ConfigError(
            f"--database-url: malformed URL (scheme {scheme!r} is not postgresql or "
            f"postgresql+DRIVER); expected {_SHAPE}"
        )
    netloc = urlsplit("//" + raw.split("://", 1)[1]).netloc
    if netloc.count("@") > 1:
        raise ConfigError(
            f"--database-url: malformed URL (more than one '@'; percent-encode an "
            f"'@' in the password as %40); expected {_SHAPE}"
        )
    try:
        return parse_url(raw)
    except ValueError as exc:
        raise ConfigError(f"--database-url: {exc}; expected {_SHAPE}") from exc


@contextlib.contextmanager
def provision(
    settings: Settings,
    database: str,
    progress: Progress,
    resources: RunResources,
    plan: CachePlan | None = None,
) -> Iterator[tuple[DbUrl, dict[str, Any], str, tuple[str, ...]]]:
    """Yield (server URL, admin conninfo, label, secrets); drop or delete it all afterwards."""
    if settings.database_url:
        target = _parse_database_url(settings.database_url)
        label = target.label()
        admin = target.conninfo()
        admin.setdefault("dbname", "postgres")
        hidden = (target.password,) if target.password else ()
        owner = ScratchOwner(admin, database, settings.connect_timeout)
        try:
            create_scratch(owner, label=label, connect_timeout=settings.connect_timeout)
            if owner.swept:
                progress(f"dropped {len(owner.swept)} scratch database(s) left by dead runs")
            yield target, admin, label, hidden
        except BaseException as exc:
            with signals_held():
                failed = owner.drop()
            if owner.created:
                add_cleanup_note(exc, _drop_note(owner, label, failed, hidden))
            raise
        else:
            with signals_held():
                failed = owner.drop()
            if failed is not None:
                print(
                    f"check-migrations: warning: {_drop_note(owner, label, failed, hidden)}",
                    file=sys.stderr,
                )
        return
    if settings.keep_warm and plan is not None:
        from migration_check.run.warm_client import open_warm

        lease = open_warm(
            resources, plan, preflight(settings), settings.keep_warm, progress, database
        )
        if lease is not None:
            with _on_warm(lease, plan, settings.keep_warm, progress) as got:
                yield got
            return
    progress("starting a throwaway PostgreSQL")
    server = ThrowawayServer(
        resources.binaries, resources.server_user,
        use_cache=settings.use_cache, on_progress=progress,
        template=plan.entry.data if plan is not None and plan.entry is not None else None,
    )  # fmt: skip
    try:
        server.start()
        if plan is not None and not server.template_used:
            plan.entry = None
        target = DbUrl(
            DEFAULT_DRIVER, SUPERUSER, None, None, PORT, "postgres",
            (("host", server.socket_dir),),
        )  # fmt: skip
        yield target, dict(server.admin_conninfo()), "the throwaway server", ()
    except BaseException as exc:
        with signals_held():
            run = server.run_dir
            server.stop()
        if run is not None:
            add_cleanup_note(
                exc,
                f"could not remove {run}; the next run removes it"
                if run.exists()
                else "server stopped and files removed",
            )
        raise
    else:
        with signals_held():
            if plan is not None:
                plan.save(server, progress)
            server.stop()


@contextlib.contextmanager
def _on_warm(
    lease: WarmLease, plan: CachePlan, keep_warm: float, progress: Progress
) -> Iterator[tuple[DbUrl, dict[str, Any], str, tuple[str, ...]]]:
    """The scratch database on the warm server (run/warm_client.py), and its teardown."""
    done = False
    try:
        target = DbUrl(
            DEFAULT_DRIVER, SUPERUSER, None, None, PORT, "postgres",
            (("host", str(lease.run_dir)),),
        )  # fmt: skip
        admin = {"host": str(lease.run_dir), "port": PORT, "user": SUPERUSER, "dbname": "postgres"}
        yield target, admin, "the warm server", ()
        done = True
    except BaseException as exc:
        add_cleanup_note(exc, "scratch database dropped on the warm server")
        raise
    finally:
        with signals_held():
            if not done:
                plan.store = None  # a check that failed keeps no template
            lease.finish(plan, keep_warm, progress)


def _drop_note(owner: ScratchOwner, label: str, failed: str | None, hidden: tuple[str, ...]) -> str:
    if failed is None:
        if not owner.existed:
            return f"scratch database {owner.database} was never created"
        return f"scratch database {owner.database} dropped"
    return (
        f"could not drop scratch database {owner.database} on {label}: "
        f"{mask_passwords(failed, hidden)}; the next check on that server drops it"
    )
