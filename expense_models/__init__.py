"""SQLAlchemy models of the Expense Manager service.

Importing the package imports every model module, so ``expense_models.metadata`` is complete:
a module left out would make its tables look "removed" to autogenerate.
"""

from __future__ import annotations

from expense_models.accounts import ACCOUNT_KINDS, Account
from expense_models.attachments import Attachment
from expense_models.base import NAMING_CONVENTION, Base
from expense_models.budgets import Budget
from expense_models.categories import Category
from expense_models.expenses import Expense
from expense_models.recurring import FREQUENCIES, RecurringExpenseRule
from expense_models.tags import Tag, expense_tags
from expense_models.types import PAYMENT_METHOD, PaymentMethod
from expense_models.users import User

__all__ = [
    "ACCOUNT_KINDS",
    "FREQUENCIES",
    "NAMING_CONVENTION",
    "PAYMENT_METHOD",
    "Account",
    "Attachment",
    "Base",
    "Budget",
    "Category",
    "Expense",
    "PaymentMethod",
    "RecurringExpenseRule",
    "Tag",
    "User",
    "expense_tags",
    "metadata",
]

metadata = Base.metadata
