"""The user aggregate: the person every other row ultimately belongs to."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import CheckConstraint, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from expense_models.base import Base
from expense_models.types import CreatedAt, Currency, JsonObject, UpdatedAt, UuidPk, currency_check

if TYPE_CHECKING:
    from expense_models.accounts import Account

__all__ = ["User"]


class User(Base):
    """A registered user of the Expense Manager."""

    __tablename__ = "users"
    __table_args__ = (
        # Uniqueness of e-mail is only meaningful if case cannot make two spellings differ.
        CheckConstraint("email = lower(email)", name="email_lowercase"),
        currency_check("default_currency"),
        {"comment": "People who own accounts and record expenses."},
    )

    id: Mapped[UuidPk]
    email: Mapped[str] = mapped_column(
        String(320), unique=True, comment="Login and contact address, stored lower-case."
    )
    display_name: Mapped[str] = mapped_column(String(100))
    default_currency: Mapped[Currency] = mapped_column(
        comment="Currency proposed for new accounts and expenses."
    )
    settings: Mapped[JsonObject] = mapped_column(
        comment="UI preferences such as locale, theme and first day of the week."
    )
    is_active: Mapped[bool] = mapped_column(server_default=text("true"))
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]

    accounts: Mapped[list[Account]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )
