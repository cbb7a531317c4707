"""Onca's metadata database: models, migrations, snapshots and schema drift checks.

SQLite in the deployment home by default; PostgreSQL when MetadataDatabaseUrl says so, in the
stack's own schema (selected with search_path, never hard-coded in the models).
"""

from onca.store.db import current_revision, head_revision, make_engine, migrate, session_scope

__all__ = ["current_revision", "head_revision", "make_engine", "migrate", "session_scope"]
