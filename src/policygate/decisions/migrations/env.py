"""Alembic environment: policygate passes its own connection (already locked) in ``config.attributes``.

Run by :func:`policygate.decisions.database.migrate`; the ``alembic`` command line works too
(``alembic -c src/policygate/decisions/migrations/alembic.ini -x url=... upgrade head``).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from policygate.decisions.schema import metadata

config = context.config
target_metadata = metadata


def _configure_and_run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite cannot ALTER most things; batch mode copies the table
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _configure_and_run(connection)
else:  # pragma: no cover - the alembic command line, for operators
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        from policygate.config import Settings

        url = Settings().db_url
    engine = create_engine(url)
    with engine.begin() as conn:
        _configure_and_run(conn)
    engine.dispose()
