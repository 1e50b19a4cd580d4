"""initial: the tables, with the revision's side of the chosen group of differences

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import context, op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

GROUPS = context.get_x_argument(as_dictionary=True).get("diffs", "all")
DB_ONLY = GROUPS in ("all", "db_only")
MODELS_ONLY = GROUPS in ("all", "models_only")
MODIFIED = GROUPS in ("all", "modified")


def upgrade() -> None:
    op.create_table("accounts", sa.Column("id", sa.Integer(), primary_key=True))
    labels = ("a", "b") if MODIFIED else ("a", "b", "c")
    op.create_table(
        "orders",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("code", sa.String(20), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("qty", sa.Integer(), nullable=False),
        sa.Column(
            "x_coll", sa.String(10, collation="C" if MODIFIED else None), nullable=False
        ),
        sa.Column("x_mood", sa.Enum(*labels, name="x_mood"), nullable=False),
        sa.CheckConstraint("qty < 100" if MODIFIED else "qty < 1000", name="x_ck_mod"),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["accounts.id"], name="x_fk_mod",
            ondelete="CASCADE" if MODIFIED else "SET NULL",
        ),
    )
    op.create_index(
        "x_ix_mod", "orders", ["qty"], postgresql_where=sa.text("qty > 0" if MODIFIED else "qty > 1")
    )
    if DB_ONLY:
        op.create_check_constraint("x_ck_old", "orders", "qty > 0")
        op.create_foreign_key("x_fk_old", "orders", "accounts", ["account_id"], ["id"])
        op.create_unique_constraint("x_uq_old", "orders", ["code"])
        op.create_index("x_ix_old", "orders", ["qty"])
    op.create_table(
        "pairs",
        sa.Column("a", sa.Integer(), nullable=False),
        sa.Column("b", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("a" if MODIFIED else "b", name="x_pk_pairs"),
    )
    op.create_table(
        "x_commented",
        sa.Column("id", sa.Integer(), primary_key=True),
        comment="old" if MODIFIED else "new",
    )
