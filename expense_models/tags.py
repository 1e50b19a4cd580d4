"""The tag aggregate: free labels a user puts on expenses, many-to-many."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    String,
    Table,
    UniqueConstraint,
    Uuid,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from expense_models.base import Base
from expense_models.types import CreatedAt, UuidPk

if TYPE_CHECKING:
    from expense_models.expenses import Expense

__all__ = ["Tag", "expense_tags"]


class Tag(Base):
    """A label such as "holiday-2025", unique per user."""

    __tablename__ = "tags"
    __table_args__ = (
        UniqueConstraint("user_id", "name", name="uq_tags_user_id_name"),
        CheckConstraint("btrim(name) <> ''", name="name_not_blank"),
        {"comment": "Free-form labels a user attaches to expenses."},
    )

    id: Mapped[UuidPk]
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(50))
    created_at: Mapped[CreatedAt]

    expenses: Mapped[list[Expense]] = relationship(secondary="expense_tags", back_populates="tags")


expense_tags = Table(
    "expense_tags",
    Base.metadata,
    # Composite primary key: a tag is on an expense at most once. Both sides cascade, since the
    # link means nothing once either end is gone.
    Column("expense_id", Uuid, ForeignKey("expenses.id", ondelete="CASCADE"), primary_key=True),
    Column(
        "tag_id",
        Uuid,
        ForeignKey("tags.id", ondelete="CASCADE"),
        primary_key=True,
        # The primary key index starts with expense_id; "expenses with this tag" needs its own.
        index=True,
    ),
    Column("tagged_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    comment="Which tags are on which expense.",
)
