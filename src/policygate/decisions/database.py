"""The decision log's database: the SQLAlchemy engine (SQLite tuned for a serialised chain, or
PostgreSQL) and its schema, owned by the Alembic migrations in ``policygate/decisions/migrations``
(brought up to date on open, under a lock, so replicas that start together migrate once).

Kept apart from :mod:`policygate.decisions.log` (what is appended and verified) and
:mod:`policygate.decisions.queries` (what is read): both only need an engine on a current schema.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from policygate.decisions.group_commit import pg_lock_key, stale_sqlite
from policygate.decisions.schema import decision_log
from policygate.errors import PolicygateError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
FIRST_REVISION = "0001"  # the schema Base.metadata.create_all made before migrations existed

_log = logging.getLogger(__name__)


class LogError(PolicygateError):
    """The decision log could not be read or written."""


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
    if parsed.database and parsed.database != ":memory:":
        directory = Path(parsed.database).parent
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # a file where the directory should be, no permission: say so
            raise LogError(
                f"cannot create the decision log's directory {directory}: {exc.strerror or exc}"
            ) from exc
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves, below
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "handle_error")
    def _on_error(context: Any) -> None:
        # After a failed write to a read-only or full disk, SQLite keeps the connection read-only:
        # drop the pool, so the first write after the disk recovers gets a fresh connection.
        if stale_sqlite(context.original_exception):
            context.is_disconnect = True

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql(f"BEGIN {conn.get_execution_options().get('sqlite_begin', 'DEFERRED')}")

    return engine


def _alembic_config(connection: Connection | None = None) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


# The newest migration's revision, so that opening a current log needs no Alembic (0.15 s of every
# CLI run); a test checks it against the migrations directory.
HEAD_REVISION = "0005"


def head_revision() -> str:
    """The newest migration shipped with this package (as Alembic reads the directory)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(conn: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(conn).get_current_revision()


def _stamped(engine: Engine) -> str | None:
    """The revision recorded in ``alembic_version``, read with plain SQL (None: none yet)."""
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except SQLAlchemyError:
        return None


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (``alembic upgrade head``), once, under a lock.

    Several processes may open one log at the same moment (replicas starting, a CLI
    beside a server): PostgreSQL serialises them with an advisory lock, SQLite with
    ``BEGIN IMMEDIATE``; whoever comes second finds the schema current and does nothing.
    A log made before migrations existed (by ``create_all``) is stamped as revision 0001.
    """
    if _stamped(engine) == HEAD_REVISION:  # the usual case: current, and no Alembic import
        return
    from alembic import command

    head = head_revision()
    with engine.connect() as conn:
        if current_revision(conn) == head:
            return
    with engine.connect() as conn:
        conn = conn.execution_options(sqlite_begin="IMMEDIATE")
        with conn.begin():
            if engine.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": pg_key(conn, "migrate")})
            cfg = _alembic_config(conn)
            before = current_revision(conn)
            if before is None and inspect(conn).has_table(decision_log.name):
                command.stamp(cfg, FIRST_REVISION)
                before = FIRST_REVISION
            if before != head:
                command.upgrade(cfg, "head")
                _log.info("decision log schema migrated from %s to %s", before or "empty", head)


def pg_key(conn: Connection, purpose: str) -> int:
    """This log's advisory lock key for ``purpose`` (its database and schema: group_commit.pg_lock_key)."""
    database, schema = conn.execute(text("SELECT current_database(), current_schema()")).one()
    return pg_lock_key(str(database), str(schema), purpose)
