from geoalchemy2 import Geometry
from sqlalchemy import MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

metadata = MetaData(naming_convention={"pk": "pk_%(table_name)s"})


class Base(DeclarativeBase):
    metadata = metadata


class Place(Base):
    __tablename__ = "places"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    location = mapped_column(Geometry("POINT", srid=4326), nullable=False)
