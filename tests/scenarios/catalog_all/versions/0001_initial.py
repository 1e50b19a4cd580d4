"""initial: every feature the catalog comparison reads

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS citext")
    op.execute("CREATE SCHEMA billing")
    op.create_table(
        "currencies",
        sa.Column("code", sa.String(3), nullable=False),
        sa.Column("numeric_code", sa.String(3), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_currencies")),
    )
    op.create_table(
        "customers",
        sa.Column("id", sa.Integer(), sa.Identity(start=100, increment=5), nullable=False),
        sa.Column("email", postgresql.CITEXT(), nullable=False),
        sa.Column("name", sa.String(100, collation="C"), nullable=False, comment="Display name."),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customers")),
        sa.UniqueConstraint("email", name=op.f("uq_customers_email")),
        comment="People who pay us.",
    )
    op.create_table(
        "invoices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("reference", sa.String(40), nullable=False),
        sa.Column(
            "status", sa.Enum("draft", "sent", "paid", name="invoice_status"), nullable=False
        ),
        sa.Column("amount", sa.Numeric(12, 2), nullable=False),
        sa.Column("discount", sa.Numeric(12, 2), server_default=sa.text("0"), nullable=False),
        sa.Column("total", sa.Numeric(12, 2), sa.Computed("amount - discount"), nullable=False),
        sa.Column(
            "issued_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.CheckConstraint("amount > 0", name=op.f("ck_invoices_positive")),
        sa.CheckConstraint("discount <= amount", name=op.f("ck_invoices_discount_le_amount")),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_invoices_customer_id_customers"),
            ondelete="CASCADE", deferrable=True, initially="DEFERRED",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoices")),
    )
    op.create_index(
        "ix_invoices_customer_issued", "invoices", ["customer_id", sa.text("issued_at DESC")]
    )
    op.create_index(
        "ix_invoices_open", "invoices", ["due_on"], postgresql_where=sa.text("status <> 'paid'")
    )
    op.create_index("ix_invoices_lower_reference", "invoices", [sa.text("lower(reference)")])
    op.create_table(
        "entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("invoice_id", sa.Integer(), nullable=True),
        sa.Column(
            "kind", sa.Enum("debit", "credit", name="entry_kind", schema="billing"), nullable=False
        ),
        sa.Column("note", sa.Text(), nullable=True, comment="Free text."),
        sa.ForeignKeyConstraint(
            ["invoice_id"], ["invoices.id"], name=op.f("fk_entries_invoice_id_invoices"),
            ondelete="SET NULL", onupdate="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_entries")),
        sa.UniqueConstraint(
            "invoice_id", "kind", name=op.f("uq_entries_invoice_id"),
            postgresql_nulls_not_distinct=True,
        ),
        schema="billing",
        comment="Ledger lines.",
    )
    # Only the migrations create these: functions, triggers, views, rows are no findings.
    op.execute(
        "CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN NEW.issued_at := now(); RETURN NEW; END $$"
    )
    op.execute(
        "CREATE TRIGGER invoices_touch BEFORE UPDATE ON invoices "
        "FOR EACH ROW EXECUTE FUNCTION touch()"
    )
    op.execute("CREATE VIEW open_invoices AS SELECT * FROM invoices WHERE status <> 'paid'")
    op.execute("INSERT INTO currencies VALUES ('EUR', '978')")
    op.create_table("audit_log", sa.Column("id", sa.BigInteger(), primary_key=True))
    op.execute("ALTER TABLE audit_log ADD CONSTRAINT audit_log_id_check CHECK (id > 0)")


def downgrade() -> None:
    op.execute("DROP VIEW open_invoices")
    op.drop_table("audit_log")
    op.drop_table("entries", schema="billing")
    op.drop_table("invoices")
    op.drop_table("customers")
    op.drop_table("currencies")
    op.execute("DROP FUNCTION touch()")
    sa.Enum(name="entry_kind", schema="billing").drop(op.get_bind())
    sa.Enum(name="invoice_status").drop(op.get_bind())
    op.execute("DROP SCHEMA billing")
