"""Creating and upgrading the chat schema with Alembic, on any SQLAlchemy engine.

The revisions live in `migrations/versions`. The first one is idempotent: it also brings a
database made before Alembic managed the schema (earlier versions of this app) to the baseline,
so every database, new or old, ends at the same head.
"""

from __future__ import annotations

import time
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

MIGRATIONS = Path(__file__).parent / "migrations"
ATTEMPTS = 4  # two processes starting at once: the loser's DDL fails, its retry finds the tables


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database to `revision` (default: the newest schema)."""
    config = alembic_config()
    for attempt in range(ATTEMPTS):
        try:
            if current_revision(engine) == head_revision() and revision == "head":
                return
            with engine.begin() as conn:
                config.attributes["connection"] = conn
                command.upgrade(config, revision)
            return
        except DBAPIError:
            if attempt == ATTEMPTS - 1:
                raise
            time.sleep(0.1 * (attempt + 1))
