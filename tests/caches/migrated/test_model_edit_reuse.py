"""A model edit the replay did not depend on reuses the migrated database (issue 20).

The models are keyed by what of them can run during an upgrade (fingerprints/model_record.py),
so adding a column replays nothing, and a model edit with its new revision replays only that
revision. Reuse is observed through the progress lines ``-v`` prints ("using cached migrated
database (2 revision(s), head 0002)", "upgrading N revision(s) to head"); the verdict is held to
``--no-cache``'s.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers.edits import edit
from tests.helpers.soundness import (
    DB_STORED,
    Check,
    Verdict,
    add_revision,
    drift_in_notes,
    new_check,
)

REUSED = "using cached migrated database (2 revision(s), head 0002)"


def _filled(tmp_path: Path, run_root: Path) -> Check:
    check = new_check(tmp_path, run_root)
    check.args[:] = ["-v"]
    check.env["CHECK_MIGRATIONS_VERDICT_CACHE"] = "0"  # the migrated database is under test
    first = check.run()
    assert first.exit == 0, first.describe()
    assert DB_STORED in first.stderr, first.describe()
    return check


def _reused(verdict: Verdict, applied: int) -> None:
    assert REUSED in verdict.stderr, verdict.stderr
    assert f"upgrading {applied} revision(s) to head" in verdict.stderr, verdict.stderr
    assert "replaying the history" not in verdict.stderr, verdict.stderr


def test_adding_a_column_to_the_models_reuses_the_migrated_database(
    tmp_path: Path, run_root: Path
) -> None:
    check = _filled(tmp_path, run_root)
    drift_in_notes(check.project)
    cached = check.run()
    _reused(cached, 0)
    assert cached.exit == 1, cached.describe()
    assert [(f["kind"], f["table"], f.get("column")) for f in map(json.loads, cached.findings)] == [
        ("add_column", "notes", "pinned")
    ]
    assert cached == check.run("--no-cache")


def test_a_column_of_a_newly_imported_type_reuses_it_too(tmp_path: Path, run_root: Path) -> None:
    """The import only the new column uses cannot run during an upgrade."""
    check = _filled(tmp_path, run_root)
    models = check.project / "models.py"
    edit(models, "from sqlalchemy import ", "from sqlalchemy import Boolean, ")
    body = "    body: Mapped[str] = mapped_column(String(500))\n"
    edit(models, body, body + "    pinned: Mapped[bool | None] = mapped_column(Boolean)\n")
    cached = check.run()
    _reused(cached, 0)
    assert cached.exit == 1, cached.describe()
    assert cached == check.run("--no-cache")


def test_a_model_edit_with_its_revision_replays_only_the_new_revision(
    tmp_path: Path, run_root: Path
) -> None:
    check = _filled(tmp_path, run_root)
    drift_in_notes(check.project)
    add_revision(
        check.project,
        '    op.add_column("notes", sa.Column("pinned", sa.Boolean(), nullable=True))\n',
        '    op.drop_column("notes", "pinned")\n',
    )
    cached = check.run()
    _reused(cached, 1)
    assert cached.exit == 0, cached.describe()
    assert cached == check.run("--no-cache")
    # The entry it stored extends the cached one: the next model edit starts from head 0003.
    edit(check.project / "models.py", "    pinned: Mapped[bool | None]\n",
         "    pinned: Mapped[bool | None]\n    archived: Mapped[bool | None]\n")  # fmt: skip
    again = check.run()
    assert "using cached migrated database (3 revision(s), head 0003)" in again.stderr
    assert again.exit == 1, again.describe()
