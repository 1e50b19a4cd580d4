"""The recurring-rule aggregate: subscriptions, rent and other expenses that repeat."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import CheckConstraint, ForeignKey, Index, SmallInteger, String, text
from sqlalchemy.orm import Mapped, mapped_column

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

__all__ = ["FREQUENCIES", "RecurringExpenseRule"]

FREQUENCIES: tuple[str, ...] = ("daily", "weekly", "monthly", "yearly")
"""Allowed values of ``recurring_expense_rules.frequency``."""


class RecurringExpenseRule(Base):
    """A template from which a scheduler creates expenses every ``interval_count`` periods."""

    __tablename__ = "recurring_expense_rules"
    __table_args__ = (
        positive_check(),
        currency_check(),
        CheckConstraint(
            "frequency IN (" + ", ".join(f"'{f}'" for f in FREQUENCIES) + ")",
            name="frequency_known",
        ),
        CheckConstraint("interval_count >= 1", name="interval_count_positive"),
        CheckConstraint("ends_on IS NULL OR ends_on >= starts_on", name="ends_on_after_starts_on"),
        # The scheduler only ever looks for active rules that are due.
        Index("ix_recurring_expense_rules_due", "next_run_on", postgresql_where=text("is_active")),
        {"comment": "Templates for expenses that repeat on a schedule."},
    )

    id: Mapped[UuidPk]
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    category_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("categories.id", ondelete="SET NULL"), index=True
    )
    amount: Mapped[Money]
    currency: Mapped[Currency]
    payment_method: Mapped[PaymentMethod] = mapped_column(PAYMENT_METHOD)
    description: Mapped[str] = mapped_column(String(200))
    frequency: Mapped[str] = mapped_column(String(10), comment="One of FREQUENCIES.")
    interval_count: Mapped[int] = mapped_column(
        SmallInteger, server_default=text("1"), comment="Repeat every N frequency units."
    )
    starts_on: Mapped[date]
    ends_on: Mapped[date | None] = mapped_column(comment="Last day a run may happen; NULL: never.")
    next_run_on: Mapped[date | None] = mapped_column(
        comment="Next day the scheduler creates an expense; NULL once the rule is exhausted."
    )
    is_active: Mapped[bool] = mapped_column(server_default=text("true"))
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]
