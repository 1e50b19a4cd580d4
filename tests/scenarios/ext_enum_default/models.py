from sqlalchemy import Enum, MetaData
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

metadata = MetaData(naming_convention={"pk": "pk_%(table_name)s"})


class Base(DeclarativeBase):
    metadata = metadata


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[str] = mapped_column(
        Enum("new", "paid", "shipped", name="order_status"), server_default="new"
    )
