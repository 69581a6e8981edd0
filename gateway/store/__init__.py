"""The gateway's database: ``open_store(url)`` gives a migrated :class:`RecordStore` on SQLite or PostgreSQL.

``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db`` for the embedded default (WAL);
``postgresql://user@host:port/dbname`` (or ``postgres://``) for several gateway processes.
"""

from datetime import UTC, datetime

from gateway.errors import ConfigError
from gateway.store.dialects import dialect_for
from gateway.store.record_store import RecordStore
from gateway.store.sql_store import SqlRecordStore

__all__ = ["RecordStore", "SqlRecordStore", "open_store"]


def open_store(url: str, *, max_rejections: int = 100_000) -> RecordStore:
    """Connect to the database at ``url`` and bring its schema up to date.

    Raises :class:`ConfigError` for a URL that is not valid and :class:`StoreError` (naming the URL
    without its password) for a database that cannot be opened, or whose schema is newer than this code.
    """
    if max_rejections < 0:
        raise ConfigError(f"max_rejections must be 0 or more, got {max_rejections}")
    store = SqlRecordStore(dialect_for(url), max_rejections=max_rejections)
    try:
        store.migrate(at=datetime.now(UTC))
    except BaseException:
        store.close()
        raise
    return store
