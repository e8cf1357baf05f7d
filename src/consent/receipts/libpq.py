"""PostgreSQL with psycopg 3: a batch of receipts in a single libpq call.

A receipt is written on every consent post. Going through SQLAlchemy's
``execute`` and psycopg's costs more Python than the round trip, and under
load every extra step that waits hands the interpreter lock to another
thread and waits to get it back. So the statement is SQLAlchemy's, the values
are dumped as text by the connection's own psycopg adapters, and one libpq
call sends them: prepared once per connection and row count, unless the
connection prepares nothing (``prepare_threshold=None``, as PgBouncer in
transaction mode needs).
"""

from __future__ import annotations

import typing as t
import zlib

if t.TYPE_CHECKING:
    import sqlalchemy as sa


def is_psycopg(engine: sa.Engine) -> bool:
    """True when ``engine`` talks to PostgreSQL through psycopg 3."""
    dialect = engine.dialect
    return dialect.name == "postgresql" and dialect.driver == "psycopg"


def is_disconnect(error: BaseException | None) -> bool:
    """True when a psycopg error says the connection is gone: lost on the
    client's side (no SQLSTATE), a connection exception (class 08), or the
    server shutting down or ending the session (class 57P)."""
    import psycopg

    if not isinstance(error, psycopg.OperationalError):
        return False
    sqlstate = getattr(error, "sqlstate", None)
    return sqlstate is None or sqlstate.startswith(("08", "57P"))


def check_result(result: t.Any, statement: str) -> None:
    """Unless a libpq result is a success, raise what SQLAlchemy raises for
    the same failure: psycopg's error class for its SQLSTATE, wrapped in
    SQLAlchemy's, so that a store fails alike on every path."""
    import psycopg
    import sqlalchemy as sa
    from psycopg import pq

    if result.status in (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK):
        return
    message = (result.error_message or b"").decode("utf-8", "replace").strip()
    sqlstate = result.error_field(pq.DiagnosticField.SQLSTATE)
    try:
        error = psycopg.errors.lookup(sqlstate.decode()) if sqlstate else None
    except KeyError:
        error = None
    orig = (error or psycopg.OperationalError)(
        message or f"PostgreSQL answered {result.status.name}."
    )
    raise sa.exc.DBAPIError.instance(statement, None, orig, psycopg.Error)


class OneCallInsert:
    """``INSERT ... ON CONFLICT DO NOTHING`` of up to 50 rows into ``table``,
    sent in one libpq call on an autocommit connection.

    :param table: The receipts table.
    """

    def __init__(self, table: sa.Table) -> None:
        self._table = table
        self._sqls: dict[int, tuple[str, list[str]]] = {}
        # Statements are prepared per connection under a name; stores of
        # different schemas may share an engine, so the name tells them apart.
        self._prefix = f"consent_insert_{zlib.crc32(table.fullname.encode()):08x}"

    def _statement(self, engine: sa.Engine, rows: int) -> tuple[str, list[str]]:
        """The statement of ``rows`` rows as SQLAlchemy compiles it for this
        engine with ``$n`` placeholders, and the names of its parameters in
        order."""
        compiled = self._sqls.get(rows)
        if compiled is None:
            import sqlalchemy as sa
            from sqlalchemy.dialects import postgresql

            table = self._table
            statement = postgresql.insert(table).values(
                [
                    {
                        c.name: sa.bindparam(f"{c.name}_{i}", type_=c.type)
                        for c in table.c
                    }
                    for i in range(rows)
                ]
            )
            statement = statement.on_conflict_do_nothing(index_elements=["receipt_id"])
            # psycopg's dialect casts every parameter to its column's type,
            # so that values sent as text need no type of their own.
            dialect_class: t.Any = type(engine.dialect)
            sql = statement.compile(dialect=dialect_class(paramstyle="numeric_dollar"))
            assert sql.positiontup is not None
            compiled = self._sqls[rows] = (str(sql), list(sql.positiontup))
        return compiled

    def __call__(self, conn: sa.Connection, rows: list[dict[str, t.Any]]) -> None:
        """Insert ``rows`` (column name to value) on ``conn``, which commits
        by itself (autocommit).

        :raises sqlalchemy.exc.DBAPIError: as SQLAlchemy raises it.
        """
        from psycopg.adapt import PyFormat

        sql, names = self._statement(conn.engine, len(rows))
        params = {f"{k}_{i}": v for i, row in enumerate(rows) for k, v in row.items()}
        entry = conn.connection
        driver = entry.driver_connection
        assert driver is not None
        dumpers: dict[type, t.Any] = entry.info.setdefault("consent_dumpers", {})
        values: list[t.Any] = []
        for param in names:
            value = params[param]
            if value is None:
                values.append(None)
                continue
            dumper = dumpers.get(type(value))
            if dumper is None:
                found = driver.adapters.get_dumper(type(value), PyFormat.TEXT)
                dumper = dumpers[type(value)] = found(type(value), driver)
            values.append(dumper.dump(value))
        pgconn = driver.pgconn
        query = sql.encode(driver.info.encoding)
        if driver.prepare_threshold is None:
            check_result(pgconn.exec_params(query, values), sql)
            return
        prepared: set[bytes] = entry.info.setdefault("consent_prepared", set())
        statement = f"{self._prefix}_{len(rows)}".encode()
        if statement not in prepared:
            check_result(pgconn.prepare(statement, query), sql)
            prepared.add(statement)
        check_result(pgconn.exec_prepared(statement, values), sql)
