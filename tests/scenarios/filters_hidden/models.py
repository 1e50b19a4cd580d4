"""The same tables as the revision; the models' side of each difference (env.py picks the group)."""
import enum
import os

from sqlalchemy import (
    CheckConstraint,
    Enum,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

GROUPS = os.environ.get("FILTERS_DIFFS", "all")
MODELS_ONLY = GROUPS in ("all", "models_only")

metadata = MetaData()


class Base(DeclarativeBase):
    metadata = metadata


class Mood(enum.Enum):
    a = "a"
    b = "b"
    c = "c"


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = tuple(
        [
            CheckConstraint("qty < 1000", name="x_ck_mod"),
            ForeignKeyConstraint(
                ["owner_id"], ["accounts.id"], name="x_fk_mod", ondelete="SET NULL"
            ),
            Index("x_ix_mod", "qty", postgresql_where=text("qty > 1")),
        ]
        + (
            [
                CheckConstraint("char_length(code) > 1", name="x_ck_new"),
                ForeignKeyConstraint(["parent_id"], ["orders.id"], name="x_fk_new"),
                UniqueConstraint("note", name="x_uq_new"),
                Index("x_ix_new", "note"),
            ]
            if MODELS_ONLY
            else []
        )
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int | None]
    parent_id: Mapped[int | None]
    owner_id: Mapped[int | None]
    code: Mapped[str] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(Text)
    qty: Mapped[int]
    x_coll: Mapped[str] = mapped_column(String(10))
    x_mood: Mapped[Mood] = mapped_column(Enum(Mood, name="x_mood"))


class Pair(Base):
    __tablename__ = "pairs"
    __table_args__ = (PrimaryKeyConstraint("b", name="x_pk_pairs"),)

    a: Mapped[int]
    b: Mapped[int]


class Commented(Base):
    __tablename__ = "x_commented"
    __table_args__ = {"comment": "new"}

    id: Mapped[int] = mapped_column(primary_key=True)
