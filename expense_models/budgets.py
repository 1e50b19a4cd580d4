"""The budget aggregate: a spending limit over a period, optionally per category."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Index, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from expense_models.base import Base
from expense_models.types import (
    CreatedAt,
    Currency,
    Money,
    UpdatedAt,
    UuidPk,
    currency_check,
    positive_check,
)

__all__ = ["Budget"]


class Budget(Base):
    """How much a user means to spend between two dates."""

    __tablename__ = "budgets"
    __table_args__ = (
        positive_check(),
        currency_check(),
        CheckConstraint("period_end > period_start", name="period_end_after_start"),
        CheckConstraint(
            "alert_threshold > 0 AND alert_threshold <= 1", name="alert_threshold_fraction"
        ),
        Index("ix_budgets_user_id_period_start", "user_id", "period_start"),
        {"comment": "Spending limits per period, for one category or (category NULL) overall."},
    )

    id: Mapped[UuidPk]
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    category_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("categories.id", ondelete="CASCADE"),
        index=True,
        comment="Category the limit applies to; NULL means all spending.",
    )
    name: Mapped[str] = mapped_column(String(100))
    amount: Mapped[Money] = mapped_column(comment="Spending limit for the whole period.")
    currency: Mapped[Currency]
    period_start: Mapped[date] = mapped_column(comment="First day of the period, inclusive.")
    period_end: Mapped[date] = mapped_column(comment="Day after the period, exclusive.")
    alert_threshold: Mapped[Decimal | None] = mapped_column(
        Numeric(3, 2), comment="Warn when this fraction of amount is spent, e.g. 0.80."
    )
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]
