"""The category aggregate: a per-user tree such as Food > Groceries."""

from __future__ import annotations

import uuid

from sqlalchemy import CHAR, CheckConstraint, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from expense_models.base import Base
from expense_models.types import CreatedAt, UpdatedAt, UuidPk

__all__ = ["Category"]


class Category(Base):
    """A node of a user's category tree; deleting a node deletes its subtree."""

    __tablename__ = "categories"
    __table_args__ = (
        # NULLS NOT DISTINCT so that two top-level (parent_id IS NULL) categories cannot share
        # a name either.
        UniqueConstraint(
            "user_id",
            "parent_id",
            "name",
            name="uq_categories_user_id_parent_id_name",
            postgresql_nulls_not_distinct=True,
        ),
        CheckConstraint("parent_id <> id", name="not_own_parent"),
        CheckConstraint("color ~ '^#[0-9a-f]{6}$'", name="color_hex"),
        {"comment": "Per-user category tree; parent_id is NULL for top-level categories."},
    )

    id: Mapped[UuidPk]
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    parent_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("categories.id", ondelete="CASCADE"),
        index=True,
        comment="Parent category; deleting it deletes this subtree.",
    )
    name: Mapped[str] = mapped_column(String(100))
    color: Mapped[str | None] = mapped_column(CHAR(7), comment="Display colour as #rrggbb.")
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]

    parent: Mapped[Category | None] = relationship(
        back_populates="children", remote_side="Category.id"
    )
    children: Mapped[list[Category]] = relationship(
        back_populates="parent", cascade="all, delete-orphan", passive_deletes=True
    )
