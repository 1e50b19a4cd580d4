"""The cache suites' shared parts: what a hit and a store say, and the projects they edit.

A verdict is served when ``(cached verdict`` is on stderr; a migrated database when ``using
cached migrated database`` is. ``prepare_every_input_kind`` gives the base scenario an input of
every kind a verdict's key must cover, so each can be changed after a stored verdict.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.edits import edit, skip_tables
from tests.helpers.reports import run_main

HIT = "(cached verdict"
MISS = "not reusing the previous verdict"
USING = "using cached migrated database"
STORED = "cached the migrated database for later runs"

Capsys = pytest.CaptureFixture[str]


def migrated_entries(cache_dir: Path) -> list[Path]:
    return sorted(cache_dir.glob("migrated-*"))


def verdict_files(cache_dir: Path) -> list[Path]:
    return sorted((cache_dir / "verdicts").glob("verdict-*.json"))


def stored_then(capsys: Capsys, *args: str) -> tuple[int, str]:
    """Run once (stores a verdict), then again: the second must be served from the cache."""
    rc, out, err = run_main(capsys, *args)
    assert HIT not in err
    rc2, out2, err2 = run_main(capsys, *args)
    assert HIT in err2, err2
    assert (rc2, out2) == (rc, out)
    return rc, out


def misses_and_agrees(capsys: Capsys, *args: str) -> int:
    """The next check must run for real, and say what --no-cache says."""
    rc, out, err = run_main(capsys, *args)
    assert HIT not in err, err
    rc_nc, out_nc, _ = run_main(capsys, *args, "--no-cache")
    assert (rc, out) == (rc_nc, out_nc)
    return rc


# Each edit of test_misses.py changes one kind of input after a verdict was stored. The scenario
# ("base", plus the files written by ``prepare_every_input_kind``) agrees before every edit; most
# edits make it drift, so a stale verdict would be a false "agree".
HELPERS = "NAME_LENGTH = 100\n"
INNER = "BODY_LENGTH = 500\n"
LENGTHS = '{"email": 200}\n'
FAKELIB = "STATUS_LENGTH = 20\n"


def prepare_every_input_kind(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Give the base scenario every input kind: helpers, a package, a data file, a library."""
    (project / "helpers.py").write_text(HELPERS)
    (project / "hpkg").mkdir()
    (project / "hpkg" / "__init__.py").write_text("")
    (project / "hpkg" / "inner.py").write_text(INNER)
    (project / "hpkg" / "outer.py").write_text("from hpkg.inner import BODY_LENGTH\n")
    (project / "lengths.json").write_text(LENGTHS)
    libs = project.parent / "libs"
    (libs / "fakelib").mkdir(parents=True)
    (libs / "fakelib" / "__init__.py").write_text(FAKELIB)
    (libs / "fakelib-1.0.dist-info").mkdir()
    (libs / "fakelib-1.0.dist-info" / "METADATA").write_text("Name: fakelib\nVersion: 1.0\n")
    monkeypatch.setenv("PYTHONPATH", str(libs))
    models = project / "models.py"
    edit(models, "from sqlalchemy import", "import json\nimport os\n\nimport fakelib\n"
         "from helpers import NAME_LENGTH\nfrom hpkg.outer import BODY_LENGTH\n"
         "from sqlalchemy import")  # fmt: skip
    edit(models, "metadata = MetaData(",
         'LENGTHS = json.load(open("lengths.json"))\n'
         'STATUS_DEFAULT = os.environ.get("STATUS_DEFAULT", "active")\n\n'
         "metadata = MetaData(")  # fmt: skip
    edit(models, "String(200)", 'String(LENGTHS["email"])')
    edit(models, "String(100)", "String(NAME_LENGTH)")
    edit(models, "String(500)", "String(BODY_LENGTH)")
    edit(models, "String(20), server_default=text(\"'active'\")",
         "String(fakelib.STATUS_LENGTH), "
         "server_default=text(f\"'{STATUS_DEFAULT}'\")")  # fmt: skip
    env_py = project / "env.py"
    # As this repository's env.py does: variables from a .env file python-dotenv finds.
    env_py.write_text("from dotenv import load_dotenv\n\nload_dotenv()\n" + env_py.read_text())
    # Tables named by -x skip=... and by alembic.ini's skip_tables are left out.
    skip_tables(project, "context.get_x_argument(as_dictionary=True).get('skip', '') + ','"
                " + config.get_main_option('skip_tables', '')")  # fmt: skip


def drift_in_notes(project: Path) -> None:
    edit(project / "models.py", "    body: Mapped[str] = mapped_column(String(BODY_LENGTH))\n",
         "    body: Mapped[str] = mapped_column(String(BODY_LENGTH))\n"
         "    pinned: Mapped[bool | None]\n")  # fmt: skip
