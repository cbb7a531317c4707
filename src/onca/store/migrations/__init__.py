"""Alembic migrations of the metadata database (run through onca.store.db.migrate)."""
