"""Edits to a copied scenario project: the model changes, revisions and settings tests reuse.

Each edit asserts that the text it replaces is there: an edit that silently does nothing would
turn a test of "this change is caught" into a test of an unchanged project.
"""

from __future__ import annotations

from pathlib import Path

# The ``base`` and ``history`` scenarios' users.name line, and a column added after it.
NAME_LINE = "    name: Mapped[str | None] = mapped_column(String(100))\n"
NICKNAME = (NAME_LINE, NAME_LINE + "    nickname: Mapped[str | None] = mapped_column(String(50))\n")
PHONE = (NAME_LINE, NAME_LINE + "    phone: Mapped[str | None] = mapped_column(String(30))\n")

# The revision that brings the database to PHONE's models, on top of the scenarios' 0002.
NEW_REVISION = '''"""phone

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("phone", sa.String(30), nullable=True))


def downgrade() -> None:
    op.drop_column("users", "phone")
'''


def edit(path: Path, old: str, new: str) -> None:
    """Replace the first ``old`` in the file."""
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def edit_unique(path: Path, old: str, new: str) -> None:
    """Replace ``old``, which must stand in the file exactly once."""
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} in {path}"
    path.write_text(text.replace(old, new))


def edit_all(path: Path, old: str, new: str) -> None:
    """Replace every ``old`` in the file."""
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))


def settings(project: Path, body: str) -> None:
    """The project's ``[tool.check-migrations]`` table, and nothing else in its pyproject.toml."""
    (project / "pyproject.toml").write_text(f"[tool.check-migrations]\n{body}\n")


def write_third_revision(project: Path, body: str, slug: str = "hang") -> Path:
    """``versions/0003_<slug>.py`` on top of the base scenario's 0002, ``upgrade()`` = ``body``.

    ``os``, ``sa`` and ``op`` are imported for the body's use.
    """
    path = project / "versions" / f"0003_{slug}.py"
    path.write_text(
        f'"""{slug}\n\nRevision ID: 0003\n"""\nimport os\n\nimport sqlalchemy as sa\n'
        "from alembic import op\n\n"
        'revision = "0003"\ndown_revision = "0002"\nbranch_labels = None\ndepends_on = None\n\n\n'
        f"def upgrade() -> None:\n{body}\n\n\ndef downgrade() -> None:\n    pass\n"
    )
    return path


def skip_tables(project: Path, expr: str, prelude: str = "") -> None:
    """env.py leaves out of the comparison the tables named (comma-separated) by ``expr``."""
    env_py = project / "env.py"
    edit(env_py, "target_metadata = metadata\n", "target_metadata = metadata\n" + prelude +
         f"SKIP = set(({expr}).split(','))\n\n\n"
         "def include_object(obj, name, type_, reflected, compare_to):\n"
         "    table = name if type_ == 'table' else getattr(getattr(obj, 'table', None), "
         "'name', None)\n"
         "    return table not in SKIP\n")  # fmt: skip
    text = env_py.read_text().replace(
        "compare_server_default=True)",
        "compare_server_default=True, include_object=include_object)",
    )
    env_py.write_text(text)
