"""The attachment aggregate: receipts and other files kept for an expense."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from sqlalchemy import CHAR, BigInteger, CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from expense_models.base import Base
from expense_models.types import CreatedAt, JsonObject, UuidPk

if TYPE_CHECKING:
    from expense_models.expenses import Expense

__all__ = ["Attachment"]


class Attachment(Base):
    """A file attached to an expense; the bytes live in object storage, not in the database."""

    __tablename__ = "attachments"
    __table_args__ = (
        CheckConstraint("size_bytes > 0", name="size_bytes_positive"),
        CheckConstraint("sha256 ~ '^[0-9a-f]{64}$'", name="sha256_hex"),
        {"comment": "Receipts and other files attached to expenses (metadata only)."},
    )

    id: Mapped[UuidPk]
    expense_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("expenses.id", ondelete="CASCADE"), index=True
    )
    file_name: Mapped[str] = mapped_column(String(255), comment="Name as uploaded by the user.")
    content_type: Mapped[str] = mapped_column(String(100))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(CHAR(64), comment="Hex digest, to spot duplicate uploads.")
    storage_key: Mapped[str] = mapped_column(
        String(500), unique=True, comment="Object-storage key of the file."
    )
    # ``metadata`` is reserved on declarative classes, hence the attribute name.
    meta: Mapped[JsonObject] = mapped_column(
        "metadata", comment="Extracted data, e.g. OCR text, merchant, total."
    )
    created_at: Mapped[CreatedAt]

    expense: Mapped[Expense] = relationship(back_populates="attachments")
