"""A history a library ships (Apache Airflow's, in site-packages): a revision added there in place.

The input recorder keys a library by its version, not by listing its directories, so a new
revision file in a version location under site-packages went unseen and the previous verdict was
served (found by the bench's real Airflow row: exit 1 served where ``--no-cache`` said 0). The
version locations' listings are part of every verdict's key now (worker/main.py).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.helpers.edits import edit
from tests.helpers.soundness import Case, Check, differential, make_venv, new_check, site_packages

# A revision on top of 0002 adding a column the models lack: the verdict goes from 0 to 1.
REVISION = '''"""shipped 0003"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("notes", sa.Column("shipped", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column("notes", "shipped")
'''


def _shipped(c: Check) -> Path:
    return site_packages(c.tmp / "venv") / "shippedapp" / "versions"


def _setup(c: Check) -> None:
    c.python = str(make_venv(c.tmp / "venv"))
    site = site_packages(c.tmp / "venv")
    (site / "shippedapp").mkdir()
    (site / "shippedapp" / "__init__.py").write_text("")
    dist = site / "shippedapp-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: shippedapp\nVersion: 1.0\n")
    (dist / "top_level.txt").write_text("shippedapp\n")
    shutil.move(c.project / "versions", _shipped(c))
    edit(
        c.project / "alembic.ini",
        "version_locations = %(here)s/versions",
        f"version_locations = {_shipped(c)}",
    )


def _add_revision(c: Check) -> None:
    (_shipped(c) / "0003_shipped.py").write_text(REVISION)


def test_a_revision_added_to_a_shipped_history_is_a_new_verdict(
    tmp_path: Path, run_root: Path
) -> None:
    check = new_check(tmp_path, run_root)
    cached = differential(check, Case("shipped-history", _setup, _add_revision))
    assert cached.exit == 1
