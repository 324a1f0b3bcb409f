"""Key rotation: re-seal every encrypted column with the active key, a batch per transaction."""

from __future__ import annotations

from sqlalchemy import Table, Text, or_, select, type_coerce, update

from models.crypto import EncryptedString, key_ring
from models.db import Base, Database


def encrypted_columns() -> dict[Table, list]:
    """Each table with its EncryptedString columns."""
    found: dict[Table, list] = {}
    for table in Base.metadata.sorted_tables:
        columns = [column for column in table.columns if isinstance(column.type, EncryptedString)]
        if columns:
            found[table] = columns
    return found


def reencrypt_table(db: Database, table: Table, columns: list, batch: int = 500) -> int:
    """Re-seal the rows of `table` holding a value under an old key; returns how many."""
    ring = key_ring()
    raw = [type_coerce(column, Text).label(column.name) for column in columns]
    stale = or_(*(type_coerce(column, Text).not_like(f"{ring.active}:%") for column in columns))
    pk = list(table.primary_key.columns)
    total = 0
    while True:
        with db.session() as session:
            rows = session.execute(select(*pk, *raw).where(stale).limit(batch).with_for_update(skip_locked=True)).all()
            for row in rows:
                values = {column.name: None if row._mapping[column.name] is None
                          else ring.encrypt(ring.decrypt(row._mapping[column.name])) for column in columns}
                session.execute(update(table).where(*(key == row._mapping[key.name] for key in pk))
                                .values({table.c[name]: type_coerce(value, Text) for name, value in values.items()}))
            total += len(rows)
        if len(rows) < batch:
            return total


def reencrypt_all(db: Database, batch: int = 500) -> dict[str, int]:
    """Every encrypted table, re-sealed; table name -> rows changed."""
    return {table.name: reencrypt_table(db, table, columns, batch) for table, columns in encrypted_columns().items()}
