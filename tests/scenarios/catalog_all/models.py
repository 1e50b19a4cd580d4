"""Every feature the catalog comparison reads, in sync with versions/0001_initial.py."""
import datetime
import decimal
import enum

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Computed,
    DateTime,
    Enum,
    ForeignKey,
    Identity,
    Index,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import CITEXT
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

metadata = MetaData(naming_convention={
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
})


class Base(DeclarativeBase):
    metadata = metadata


class InvoiceStatus(enum.Enum):
    draft = "draft"
    sent = "sent"
    paid = "paid"


class Currency(Base):
    __tablename__ = "currencies"

    code: Mapped[str] = mapped_column(String(3), primary_key=True)
    numeric_code: Mapped[str] = mapped_column(String(3))


class Customer(Base):
    __tablename__ = "customers"
    __table_args__ = {"comment": "People who pay us."}

    id: Mapped[int] = mapped_column(Identity(start=100, increment=5), primary_key=True)
    email: Mapped[str] = mapped_column(CITEXT, unique=True)
    name: Mapped[str] = mapped_column(String(100, collation="C"), comment="Display name.")


class Invoice(Base):
    __tablename__ = "invoices"
    __table_args__ = (
        CheckConstraint("amount > 0", name="positive"),
        CheckConstraint("discount <= amount", name="discount_le_amount"),
        Index("ix_invoices_customer_issued", "customer_id", text("issued_at DESC")),
        Index("ix_invoices_open", "due_on", postgresql_where=text("status <> 'paid'")),
        Index("ix_invoices_lower_reference", func.lower(text("reference"))),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE", deferrable=True, initially="DEFERRED")
    )
    currency: Mapped[str] = mapped_column(String(3))
    reference: Mapped[str] = mapped_column(String(40))
    status: Mapped[InvoiceStatus] = mapped_column(Enum(InvoiceStatus, name="invoice_status"))
    amount: Mapped[decimal.Decimal] = mapped_column(Numeric(12, 2))
    discount: Mapped[decimal.Decimal] = mapped_column(Numeric(12, 2), server_default=text("0"))
    total: Mapped[decimal.Decimal] = mapped_column(Numeric(12, 2), Computed("amount - discount"))
    issued_at: Mapped[datetime.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    due_on: Mapped[datetime.date]


class Entry(Base):
    __tablename__ = "entries"
    __table_args__ = (
        UniqueConstraint("invoice_id", "kind", postgresql_nulls_not_distinct=True),
        {"schema": "billing", "comment": "Ledger lines."},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int | None] = mapped_column(
        ForeignKey("invoices.id", ondelete="SET NULL", onupdate="CASCADE")
    )
    kind: Mapped[str] = mapped_column(Enum("debit", "credit", name="entry_kind", schema="billing"))
    note: Mapped[str | None] = mapped_column(Text, comment="Free text.")


class AuditLog(Base):
    """Managed outside the migrations; env.py's include_object excludes it.

    Its CHECK differs from the database's on purpose: a filtered table is never compared.
    """

    __tablename__ = "audit_log"
    __table_args__ = (CheckConstraint("id > 100", name="audit_log_id_check"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
