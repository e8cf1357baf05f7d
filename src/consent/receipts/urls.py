"""Which store a configuration value names: :func:`open_store`."""

from __future__ import annotations

import os
import typing as t

from ..exceptions import ConfigurationError
from .sql import SQLITE_MEMORY
from .sql import SQLReceiptStore
from .sql import parse_url
from .sqlite import SQLiteReceiptStore

if t.TYPE_CHECKING:
    import sqlalchemy as sa

    from .store import ReceiptStore

#: The SQLite file ``"sqlite"`` names, in the receipts' folder.
DEFAULT_SQLITE_FILE = "consent-receipts.db"

_SQLITE_SCHEMA = (
    "A schema ({schema!r}) applies to PostgreSQL; a SQLite file has none:"
    " leave CONSENT_RECEIPTS_SCHEMA (schema=) at None."
)


def sqlite_path(url: str, folder: str | os.PathLike[str]) -> str | None:
    """The file of a SQLite URL that the standard library's store opens, or
    ``None`` when ``url`` is another kind of URL.

    :param url: ``"sqlite"``, ``"sqlite:///relative.db"``,
        ``"sqlite:////absolute.db"`` or any other URL.
    :param folder: What a relative path is relative to.
    :raises ConfigurationError: for an in-memory SQLite database (each
        thread would see its own).
    """
    if url == "sqlite":
        return os.path.join(os.fspath(folder), DEFAULT_SQLITE_FILE)
    if not url.startswith("sqlite:"):
        return None
    if not url.startswith("sqlite:///") or url.endswith(":memory:"):
        raise ConfigurationError(SQLITE_MEMORY.format(url=url))
    path = url[len("sqlite:///") :].split("?", 1)[0]
    return path if os.path.isabs(path) else os.path.join(os.fspath(folder), path)


def check_url(
    url: str | sa.Engine | None,
    *,
    folder: str | os.PathLike[str],
    schema: str | None = None,
) -> None:
    """Check a receipts URL without opening anything.

    What :func:`open_store` would refuse is refused here, when an app starts:
    a malformed URL, an in-memory database, a schema on SQLite, and a URL
    whose extra is not installed (``pip install "cookie-consent[sql]"``).

    :raises ConfigurationError: saying what to change or install.
    """
    if url is None or not isinstance(url, str):
        return
    path = sqlite_path(url, folder)
    if path is None:
        parsed = parse_url(url)
        is_sqlite = parsed.get_backend_name() == "sqlite"
    else:
        is_sqlite = True
    if is_sqlite and schema is not None:
        raise ConfigurationError(_SQLITE_SCHEMA.format(schema=schema))


def open_store(
    url: str | sa.Engine | None,
    *,
    folder: str | os.PathLike[str],
    schema: str | None = None,
) -> ReceiptStore | None:
    """Open the receipt store a configuration value names.

    :param url: ``None`` for no store; ``"sqlite"`` for
        ``consent-receipts.db`` in ``folder``; ``"sqlite:///name.db"``
        (relative to ``folder``) or ``"sqlite:////absolute/path.db"`` for a
        SQLite file kept with the standard library; any other SQLAlchemy
        URL, such as ``"postgresql+psycopg://user@host/db"``, or an
        SQLAlchemy engine, for :class:`~consent.receipts.sql.SQLReceiptStore`
        (an engine stays yours: the store never disposes of it).
    :param folder: The receipts' home, such as the Flask instance folder;
        created when a SQLite file goes there.
    :param schema: The PostgreSQL schema holding the tables; ``None`` for
        the connection's default.
    :raises ConfigurationError: for an in-memory SQLite database, a schema
        on SQLite, or a URL whose extra is not installed.
    :raises OSError: when ``folder`` is needed and cannot be created.

    .. versionchanged:: 0.1
        Takes the folder (``folder=``) rather than a Flask app's instance
        path, an engine as well as a URL, and ``schema``.
    """
    if url is None:
        return None
    if not isinstance(url, str):
        return SQLReceiptStore(url, schema=schema)
    check_url(url, folder=folder, schema=schema)
    path = sqlite_path(url, folder)
    if path is None:
        return SQLReceiptStore(url, schema=schema)
    if not os.path.isabs(url.removeprefix("sqlite:///")):
        os.makedirs(folder, exist_ok=True)
    return SQLiteReceiptStore(path)
