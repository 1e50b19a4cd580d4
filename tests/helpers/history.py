"""The history stories' repository, and the revision a story's feature branch adds.

Each story runs in a real git repository with a ``main`` branch made here, as a user has it:
the scenario is committed on ``main``, the change happens on a feature branch. The revision
adds users.nickname, with the downgrade the story gives it.
"""

from __future__ import annotations

from pathlib import Path

from tests.helpers.edits import NICKNAME, edit_all
from tests.helpers.git import git

REVISION = '''"""{message}

Revision ID: {rev}
Revises: {down}
"""
import sqlalchemy as sa
from alembic import op

revision = "{rev}"
down_revision = "{down}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("nickname", sa.String(50), nullable=True))


def downgrade() -> None:
    {downgrade}
'''


def repo_on_feature(project: Path) -> None:
    """The scenario committed on main, and a feature branch checked out from it."""
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "base")
    git(project, "checkout", "-q", "-b", "feature")


def add_revision(project: Path, downgrade: str, *, stage: bool = True) -> Path:
    edit_all(project / "models.py", *NICKNAME)
    path = project / "versions" / "0003_add_nickname.py"
    path.write_text(
        REVISION.format(message="add nickname", rev="0003", down="0002", downgrade=downgrade)
    )
    if stage:
        git(project, "add", "-A")
    return path
