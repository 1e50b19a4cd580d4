"""The account aggregate: wallets, bank accounts and cards an expense is paid from."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from expense_models.base import Base
from expense_models.types import CreatedAt, Currency, Money, UpdatedAt, UuidPk, currency_check

if TYPE_CHECKING:
    from expense_models.users import User

__all__ = ["ACCOUNT_KINDS", "Account"]

ACCOUNT_KINDS: tuple[str, ...] = ("cash", "checking", "savings", "credit_card", "e_wallet")
"""Allowed values of ``accounts.kind``: a CHECK, not an ENUM, since the list is expected to grow."""


class Account(Base):
    """A wallet belonging to one user, kept in one currency."""

    __tablename__ = "accounts"
    __table_args__ = (
        UniqueConstraint("user_id", "name", name="uq_accounts_user_id_name"),
        CheckConstraint(
            "kind IN (" + ", ".join(f"'{kind}'" for kind in ACCOUNT_KINDS) + ")", name="kind_known"
        ),
        currency_check(),
        # At most one default account per user; any number of non-default ones.
        Index(
            "uq_accounts_user_id_default",
            "user_id",
            unique=True,
            postgresql_where=text("is_default"),
        ),
        {"comment": "Wallets, bank accounts and cards; each belongs to one user."},
    )

    id: Mapped[UuidPk]
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20), comment="One of ACCOUNT_KINDS.")
    currency: Mapped[Currency]
    opening_balance: Mapped[Money] = mapped_column(
        server_default=text("0"), comment="Balance when the account was added; may be negative."
    )
    is_default: Mapped[bool] = mapped_column(
        server_default=text("false"), comment="Account preselected for new expenses."
    )
    archived_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), comment="Set when the account is closed; its history stays."
    )
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]

    user: Mapped[User] = relationship(back_populates="accounts")
