"""``--start-from``'s dump in the caches' keys: its path, its content, and what psql reads.

A check that starts from a dump builds its database from that file, loaded by psql (not by
Python, so fingerprints/inputs.py never sees it read). Both caches key it here instead: the
migrated database (caches/migrated.py's scope) and the verdict (caches/verdict.py's key) hold
the dump's resolved path, the SHA-256 of its content, and the ``PG*`` variables psql reads from
the worker's environment (``PGOPTIONS`` can set a ``search_path``, ``PGCLIENTENCODING`` how the
file's bytes are read). An edited dump is a different key, so it can never reuse either.

What the key cannot hold keeps both caches off: a psql meta-command other than the ones pg_dump
writes (``\\i other.sql`` reads another file, ``\\!`` runs a program), found conservatively as
any backslash outside a ``COPY ... FROM stdin`` block's rows (a backslash inside a quoted string
costs the caches, never the verdict). Not covered, as for a revision's own data files
(caches/migrated.py): files the server itself reads for the dump's SQL (``COPY ... FROM
'/path'``, ``pg_read_file``); ``--no-cache`` is the way out for such dumps.

Stdlib only: it runs in the CLI process before any server or worker exists.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from pathlib import Path

__all__ = ["DumpKey", "dump_key"]

# What pg_dump (17.6+, 18) writes outside COPY rows: \restrict and \unrestrict with a random key.
_PG_DUMP_META = re.compile(rb"^\\(?:restrict|unrestrict) [A-Za-z0-9]+\s*$")
_COPY_FROM_STDIN = re.compile(rb"^COPY .* FROM stdin;\s*$")
# Where psql connects: the worker names all of it on psql's command line (or unsets it).
_CONNECTION = frozenset({"PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGUSER", "PGPASSWORD",
                         "PGPASSFILE", "PGSERVICE", "PGSERVICEFILE"})  # fmt: skip


class DumpKey:
    """The dump's part of a cache key (``key``), or why the caches stay off (``why_not``)."""

    def __init__(self, key: str = "", why_not: str = "") -> None:
        self.key = key
        self.why_not = why_not


def dump_key(file: str, shown: str, environ: Mapping[str, str]) -> DumpKey:
    """Hash the dump ``file`` (``shown`` as the user named it, for the reason) as the key.

    ``environ``: the CLI's, whose ``PG*`` variables the worker hands psql (the connection's
    own are replaced by the scratch database's).
    """
    digest = hashlib.sha256()
    in_copy = False
    try:
        with Path(file).open("rb") as fh:
            for number, line in enumerate(fh, start=1):
                digest.update(line)
                if in_copy:
                    in_copy = line.rstrip(b"\r\n") != b"\\."
                elif _COPY_FROM_STDIN.match(line):
                    in_copy = True
                elif b"\\" in line and not _PG_DUMP_META.match(line):
                    return DumpKey(
                        why_not=f"{shown}:{number} has a psql meta-command or a backslash "
                        "(psql may read another file there), which the caches' key cannot hold"
                    )
    except OSError as exc:
        return DumpKey(why_not=f"{shown} cannot be read ({exc.strerror})")
    psql_env = {k: v for k, v in environ.items() if k.startswith("PG") and k not in _CONNECTION}
    raw = json.dumps(
        {"file": str(Path(file).resolve()), "sha256": digest.hexdigest(), "env": psql_env},
        sort_keys=True,
    )
    return DumpKey(key=hashlib.sha256(raw.encode()).hexdigest())
