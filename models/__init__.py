"""Domain models and the rules next to them.

Importing this package registers every table on `Base.metadata`, which is
what Alembic compares the migrations against.
"""

from models.db import Base
from models import outbox  # noqa: F401
from models.users import tables as _users  # noqa: F401
from models.catalog import tables as _catalog  # noqa: F401
from models.orders import tables as _orders  # noqa: F401
from models.emails import tables as _emails  # noqa: F401
from models.security import tables as _security  # noqa: F401
from models.imports import tables as _imports  # noqa: F401
from models.retention import tables as _retention  # noqa: F401

__all__ = ["Base"]
