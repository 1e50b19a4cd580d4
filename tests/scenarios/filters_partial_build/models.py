"""Models create_all() cannot build whole: seen in real projects.

A ``gin`` index without the operator class the revision gives it, and a foreign key to a column
whose UNIQUE constraint only the revision creates. And a sequence only the revision creates,
used in a server default.
"""
from sqlalchemy import CheckConstraint, ForeignKey, Index, MetaData, String, Text, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

metadata = MetaData()


class Base(DeclarativeBase):
    metadata = metadata


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(20))


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint("qty > 0", name="ck_orders_qty"),
        Index("ix_orders_body", "body", postgresql_using="gin"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_code: Mapped[str] = mapped_column(
        String(20), ForeignKey("accounts.code", name="fk_orders_account_code")
    )
    qty: Mapped[int]
    body: Mapped[str] = mapped_column(Text)


class Ticket(Base):
    __tablename__ = "tickets"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[int] = mapped_column(server_default=text("nextval('ticket_no_seq')"))
