"""A check on the warm server (``--keep-warm``) gives exactly the verdict and output of
``--no-cache``, check after check, also when a revision changes what a cluster shares (a role, a
database) and a later check would fail on what a kept server still held.

Each step runs the warm check and a ``--no-cache`` check of the same project, as users run them
(tests/helpers/warm.py: a private XDG_RUNTIME_DIR and run directory, stopped after).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from migration_check.cli.app import EXIT_FINDINGS, EXIT_OK
from tests.helpers.checker import Finished, start_checker, wait_for_line
from tests.helpers.edits import edit
from tests.helpers.procfs import wait_pid_exit
from tests.helpers.warm import Warm, drift, warm_state
from tests.helpers.warm_server import keepers, served

WARM = ("--keep-warm", "5m")


@pytest.fixture
def warm() -> Iterator[Warm]:
    with warm_state() as state:
        yield state


def _verdict(result: Finished) -> tuple[int, str, list[str]]:
    """What a user is told: the exit code, stdout, and stderr's error lines."""
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("check-migrations: error")]
    return result.returncode, result.stdout, errors


def _same_as_no_cache(project: Path, warm: Warm, expected: int) -> None:
    warm_check = warm.check(project, *WARM)
    cold = warm.check(project, "--no-cache")
    assert _verdict(warm_check) == _verdict(cold), warm_check.stderr
    assert warm_check.returncode == expected, warm_check.stderr


def _revision(project: Path, number: int, body: str) -> Path:
    path = project / "versions" / f"{number:04d}_shared.py"
    path.write_text(
        f'"""shared state\n\nRevision ID: {number:04d}\n"""\nfrom alembic import op\n\n'
        f'revision = "{number:04d}"\ndown_revision = "{number - 1:04d}"\n'
        "branch_labels = None\ndepends_on = None\n\n\n"
        f"def upgrade() -> None:\n{body}\n\n\ndef downgrade() -> None:\n    pass\n"
    )
    return path


CREATE_ROLE = (
    '    op.execute("CREATE ROLE cm_reader")\n    op.execute("GRANT SELECT ON users TO cm_reader")'
)
CREATE_DATABASE = (
    '    with op.get_context().autocommit_block():\n        op.execute("CREATE DATABASE cm_side")'
)


def test_warm_checks_in_a_row_agree_with_no_cache(project: Path, warm: Warm) -> None:
    _same_as_no_cache(project, warm, EXIT_OK)
    assert served(warm) == 1
    [first] = keepers(warm)
    # A revision creates a role: that check retires the server it changed.
    role = _revision(project, 3, CREATE_ROLE)
    _same_as_no_cache(project, warm, EXIT_OK)
    assert wait_pid_exit(first), "the server a revision added a role to served on"
    # The next check starts from the migrated cluster kept at retirement (role included) and
    # keeps its server: its upgrade creates nothing.
    _same_as_no_cache(project, warm, EXIT_OK)
    _same_as_no_cache(project, warm, EXIT_OK)
    assert served(warm) == 2
    [keeper] = keepers(warm)
    # The role's revision edited: replayed from empty, which a server still holding the role
    # would fail ("role cm_reader already exists").
    edit(role, "GRANT SELECT", "GRANT SELECT, INSERT")
    _same_as_no_cache(project, warm, EXIT_OK)
    assert wait_pid_exit(keeper), "a server holding the revision's role replayed it"
    # A revision creates a database, then is edited: the replay on a kept server would fail
    # ("database cm_side already exists").
    side = _revision(project, 4, CREATE_DATABASE)
    _same_as_no_cache(project, warm, EXIT_OK)
    edit(side, "CREATE DATABASE cm_side", "CREATE DATABASE cm_side TEMPLATE template0")
    _same_as_no_cache(project, warm, EXIT_OK)
    drift(project)
    _same_as_no_cache(project, warm, EXIT_FINDINGS)


def test_a_killed_checks_role_retires_the_server(project: Path, warm: Warm) -> None:
    _same_as_no_cache(project, warm, EXIT_OK)
    [keeper] = keepers(warm)
    # A check creates a role outside its migration's transaction, then is SIGKILLed.
    body = (
        "    with op.get_context().autocommit_block():\n"
        '        op.execute("CREATE ROLE cm_left")\n'
        '    op.execute("SELECT pg_sleep(600)")'
    )
    path = _revision(project, 3, body)
    proc = start_checker([*WARM, "-v"], project, warm.env())
    seen: list[str] = []
    try:
        assert wait_for_line(proc, "upgrading", seen), seen
        assert wait_for_line(proc, "0003", seen), seen
    finally:
        proc.kill()
        proc.communicate()
    # The same revision without the sleep: on a server that kept cm_left it would fail.
    edit(path, '    op.execute("SELECT pg_sleep(600)")', "    pass")
    _same_as_no_cache(project, warm, EXIT_OK)
    assert wait_pid_exit(keeper), "the server a killed check changed served the next one"
