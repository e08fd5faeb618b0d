"""Alembic environment: batch mode, so SQLite's limited ALTER TABLE is handled by copying."""

from alembic import context

from engine.store.models import Base

config = context.config
connection = config.attributes.get("connection")

if connection is None:  # `alembic` on the command line: build an engine from the URL
    from sqlalchemy import create_engine

    engine = create_engine(config.get_main_option("sqlalchemy.url"))
    with engine.begin() as connection:
        context.configure(
            connection=connection, target_metadata=Base.metadata, render_as_batch=True
        )
        context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    context.run_migrations()
