"""The expense aggregate: one payment, the heart of the schema."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import DateTime, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from expense_models.base import Base
from expense_models.types import (
    PAYMENT_METHOD,
    CreatedAt,
    Currency,
    Money,
    PaymentMethod,
    UpdatedAt,
    UuidPk,
    currency_check,
    positive_check,
)

if TYPE_CHECKING:
    from expense_models.attachments import Attachment
    from expense_models.tags import Tag

__all__ = ["Expense"]


class Expense(Base):
    """Money spent from an account at one moment."""

    __tablename__ = "expenses"
    __table_args__ = (
        positive_check(),
        currency_check(),
        # The main screen lists a user's expenses newest first.
        Index("ix_expenses_user_id_spent_at", "user_id", "spent_at"),
        {"comment": "Every payment a user records, one row per payment."},
    )

    id: Mapped[UuidPk]
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # RESTRICT: an account with history must be archived, not deleted.
    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("accounts.id", ondelete="RESTRICT"), index=True
    )
    # SET NULL: deleting a category leaves its expenses uncategorised, not gone.
    category_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("categories.id", ondelete="SET NULL"), index=True
    )
    recurring_rule_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("recurring_expense_rules.id", ondelete="SET NULL"),
        index=True,
        comment="Rule that generated this expense, if any.",
    )
    amount: Mapped[Money] = mapped_column(comment="Amount paid, always positive.")
    currency: Mapped[Currency] = mapped_column(comment="ISO 4217 code of amount.")
    payment_method: Mapped[PaymentMethod] = mapped_column(PAYMENT_METHOD)
    spent_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), comment="When the payment happened, not when it was recorded."
    )
    merchant: Mapped[str | None] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]

    tags: Mapped[list[Tag]] = relationship(secondary="expense_tags", back_populates="expenses")
    attachments: Mapped[list[Attachment]] = relationship(
        back_populates="expense", cascade="all, delete-orphan", passive_deletes=True
    )
