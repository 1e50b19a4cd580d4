"""Bad input from the machine: database URLs, servers, binaries, options, run directories.

As for the project's (project_cases.py): exit 2 and exactly one stderr line, never a password.
"""

from __future__ import annotations

from pathlib import Path

from tests.helpers.bad_input import Case, Ctx, mount
from tests.helpers.checker import free_port
from tests.helpers.prereq import require_root
from tests.helpers.second_server import NOCREATE, NOCREATE_PASSWORD, OWNER_PASSWORD


def unreachable_url(project: Path, ctx: Ctx) -> list[str]:
    # A closed local port: nothing listens there, the kernel refuses at once.
    return ["--database-url", f"postgresql://app:{OWNER_PASSWORD}@127.0.0.1:{free_port()}/app"]


def wrong_password(project: Path, ctx: Ctx) -> list[str]:
    assert ctx.server is not None
    return ["--database-url", ctx.server.url("postgres", password="Pw-wrong-" + "3a9f")]


def role_without_createdb(project: Path, ctx: Ctx) -> list[str]:
    assert ctx.server is not None
    return [
        "--database-url",
        ctx.server.url("postgres", user=NOCREATE, password=NOCREATE_PASSWORD),
    ]


def bad_database_url(project: Path, ctx: Ctx) -> list[str]:
    return ["--database-url", f"app:{OWNER_PASSWORD}@db.internal/app"]


def no_binaries(project: Path, ctx: Ctx) -> list[str]:
    empty = ctx.tmp / "pg" / "bin"
    empty.mkdir(parents=True)
    return ["--postgres-bin", str(empty)]


def server_will_not_start(project: Path, ctx: Ctx) -> list[str]:
    fake = ctx.shared / "fakepg" / "bin"
    fake.mkdir(parents=True)
    for name, script in {
        "initdb": '#!/bin/sh\nfor a; do case "$a" in -D) ;; esac; done\n'
        'while [ $# -gt 0 ]; do [ "$1" = -D ] && mkdir -p "$2" && echo 18 > "$2/PG_VERSION"; '
        "shift; done\nexit 0\n",
        "postgres": "#!/bin/sh\necho 'FATAL:  could not map anonymous shared memory: "
        "Cannot allocate memory' >&2\nexit 1\n",
    }.items():
        (fake / name).write_text(script)
        (fake / name).chmod(0o755)
    fake.parent.chmod(0o755)
    fake.chmod(0o755)
    return ["--postgres-bin", str(fake), "--no-cache"]


def unknown_server_user(project: Path, ctx: Ctx) -> list[str]:
    require_root("--server-user only matters when run as root")
    return ["--server-user", "no_such_user_x"]


def bad_timeout(project: Path, ctx: Ctx) -> list[str]:
    return ["--timeout", "-5"]


def read_only_run_dir(project: Path, ctx: Ctx) -> list[str]:
    target = ctx.shared / "ro"
    target.mkdir()
    mount(["-t", "tmpfs", "-o", "size=1m,ro", "tmpfs", str(target)])
    ctx.env["CHECK_MIGRATIONS_RUN_DIR"] = str(target)
    return ["--no-cache"]


def full_run_dir(project: Path, ctx: Ctx) -> list[str]:
    target = ctx.shared / "full"
    target.mkdir()
    # Room for the run directory, not for a cluster (initdb writes about 40 MB).
    mount(["-t", "tmpfs", "-o", "size=2m,mode=0755", "tmpfs", str(target)])
    ctx.env["CHECK_MIGRATIONS_RUN_DIR"] = str(target)
    return ["--no-cache"]


CASES: dict[str, Case] = {
    "unreachable_url": Case(unreachable_url, expect=(r"cannot connect to 127\.0\.0\.1:\d+/",)),
    "wrong_password": Case(
        wrong_password,
        needs_server=True,
        expect=(r"cannot connect to 127\.0\.0\.1:\d+/postgres", r"password authentication failed"),
    ),
    "role_without_createdb": Case(
        role_without_createdb,
        needs_server=True,
        expect=(r"127\.0\.0\.1:\d+/postgres: the role may not create databases", r"CREATEDB"),
    ),
    "bad_database_url": Case(bad_database_url, expect=(r"--database-url: not a URL",)),
    "no_binaries": Case(no_binaries, expect=(r"--postgres-bin .*/pg/bin: no postgres or initdb",)),
    "server_will_not_start": Case(
        server_will_not_start,
        expect=(r"PostgreSQL exited during start-up", r"could not map anonymous shared memory"),
    ),
    "unknown_server_user": Case(
        unknown_server_user, expect=(r"server user 'no_such_user_x' does not exist",), root=True
    ),
    "bad_timeout": Case(
        bad_timeout, expect=(r"Invalid value for '--timeout': -5\.0 is not in the range x>0",)
    ),
    "read_only_run_dir": Case(
        read_only_run_dir,
        expect=(r"cannot create .*/ro/check-migrations-\d+", r"Read-only"),
        root=True,
    ),
    "full_run_dir": Case(
        full_run_dir,
        expect=(
            r"initdb failed in .*/full/check-migrations-\d+/run-",
            # Which write hits the limit first varies: a relation file, or the 1 MB shared
            # memory file initdb's backend keeps in the data directory.
            r"No space left on device|could not resize shared memory segment",
            r"check free space",
        ),
        root=True,
    ),
}
