"""Every model module is imported here, or its tables would read as removed."""
from models.archive import archive
from models.base import Base, metadata
from models.legacy import LegacyImport
from models.notes import Note
from models.users import User

__all__ = ["Base", "LegacyImport", "Note", "User", "archive", "metadata"]
