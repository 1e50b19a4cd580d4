"""What a fresh server would not have: a cheap fingerprint of a cluster's shared state.

A warm server (postgres/warm.py) outlives the check that used it, and what a check changes outside
its scratch database stays for the next one: roles and their memberships and settings
(``CREATE ROLE`` in a revision, ``ALTER ROLE ... SET``), tablespaces, other databases, ``ALTER
SYSTEM``, comments and security labels on shared objects, subscriptions, parameter grants, and a
session left connected. A fresh throwaway server has none of it, so a check that changed any of
it retires the warm server (run/warm_client.py). One round trip, a digest per shared catalog:
the whole row of each (oids included: a role dropped and created again is a change), the files'
and the running server's configuration, and one entry per database (its name and the attributes
that a ``CREATE DATABASE`` or ``ALTER DATABASE`` sets, not the counters vacuum moves).
"""

from __future__ import annotations

from migration_check.postgres.wire import WireConnection

__all__ = ["cluster_fingerprint", "same_cluster"]

_SHARED = (
    "pg_authid",
    "pg_auth_members",
    "pg_db_role_setting",
    "pg_tablespace",
    "pg_shdescription",
    "pg_shseclabel",
    "pg_shdepend",
    "pg_subscription",
    "pg_replication_origin",
    "pg_file_settings",
)
_DATABASE_COLUMNS = (
    "datname, datdba, encoding, datistemplate, datallowconn, datconnlimit, dattablespace, "
    "datcollate, datctype, datacl"
)


def _digest(source: str) -> str:
    return f"md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {source} t"


def cluster_fingerprint(conn: WireConnection) -> dict[str, str]:
    """``{catalog: digest, "db:<name>": digest, "sessions": n}`` of the server ``conn`` is on."""
    shared = list(_SHARED)
    if conn.server_version_num >= 150000:
        shared.append("pg_parameter_acl")  # GRANT SET ON PARAMETER (PostgreSQL 15)
    parts = [f"SELECT '{name}', {_digest(name)}" for name in shared]
    parts.append(
        "SELECT 'settings', md5(coalesce(string_agg(name || '=' || coalesce(setting, '') "
        "|| '@' || source, '|' ORDER BY name), '')) FROM pg_settings WHERE source IN "
        "('configuration file', 'command line', 'environment variable', 'global')"
    )
    # Another session still connected after the check (a process the project left behind)
    # could still change anything.
    parts.append(
        "SELECT 'sessions', count(*)::text FROM pg_stat_activity "
        "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
    )
    parts.append(f"SELECT 'db:' || datname, md5(row({_DATABASE_COLUMNS})::text) FROM pg_database")
    rows = conn.query(" UNION ALL ".join(parts))
    return {str(name): str(value) for name, value in rows}


def same_cluster(
    before: dict[str, str], after: dict[str, str], *, added: frozenset[str] = frozenset()
) -> str | None:
    """None when ``after`` is ``before`` plus the databases ``added``; else what differs."""
    expected = {
        k: v
        for k, v in after.items()
        if k.removeprefix("db:") not in added or not k.startswith("db:")
    }
    for key in sorted(set(before) | set(expected)):
        if before.get(key) != expected.get(key):
            if key.startswith("db:"):
                return f"database {key[3:]} " + (
                    "created"
                    if key not in before
                    else "dropped"
                    if key not in expected
                    else "altered"
                )
            return f"{key} changed" if key != "sessions" else "a session stayed connected"
    return None
