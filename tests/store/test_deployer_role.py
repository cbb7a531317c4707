from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy.engine import make_url

from onca.deploy.deployer_role import (
    DEPLOYER_ROLE_VERSION,
    PASSWORD_PLACEHOLDER,
    check_privileges,
    deployer_role_sql,
    deployer_role_version,
)
from onca.store import db
from onca.store.drift import check_drift


def plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def as_role(url: str, role: str, password: str) -> str:
    return make_url(url).set(username=role, password=password).render_as_string(hide_password=False)


@pytest.fixture
def stack(postgres_url: str) -> Iterator[tuple[str, str, str]]:
    """(stack name, schema, role name) unique to the test; the role and its schema are removed after."""
    suffix = uuid.uuid4().hex[:8]
    name, schema = f"onca-t{suffix}", f"onca_t{suffix}"
    role = f"{name}-deployer"
    yield name, schema, role
    with psycopg.connect(plain(postgres_url), autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
            conn.execute(f'DROP OWNED BY "{role}" CASCADE')
            conn.execute(f'DROP ROLE "{role}"')
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def run_sql(url: str, sql: str) -> None:
    with psycopg.connect(plain(url), autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


def test_deployer_role_can_migrate_its_schema_and_nothing_else(postgres_url: str,
                                                                 stack: tuple[str, str, str]) -> None:
    name, schema, role = stack
    password = uuid.uuid4().hex
    sql = deployer_role_sql(name, schema)
    assert f'"{role}"' in sql and "SUPERUSER" in sql and "AUTHORIZATION" in sql
    run_sql(postgres_url, sql.replace(PASSWORD_PLACEHOLDER, password))
    # Idempotent: running it again changes nothing and keeps the password.
    run_sql(postgres_url, sql.replace(PASSWORD_PLACEHOLDER, "another-password"))

    url = as_role(postgres_url, role, password)
    assert deployer_role_version(url) == DEPLOYER_ROLE_VERSION
    assert check_privileges(url, schema) == []

    db.migrate(url, schema)
    assert db.current_revision(url, schema) == db.head_revision()
    assert check_drift(url, schema, db.head_revision()) == []

    with psycopg.connect(plain(url), autocommit=True) as conn:
        for statement in ("CREATE TABLE public.escape (id int)", "CREATE SCHEMA elsewhere",
                          "CREATE DATABASE elsewhere", "CREATE ROLE other"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)  # type: ignore[arg-type]

    # Another stack's schema is out of reach too.
    other = f"{schema}_other"
    run_sql(postgres_url, f"CREATE SCHEMA {other}")
    try:
        problems = check_privileges(url, other)
        assert problems and "cannot create tables in schema" in problems[0]
        with pytest.raises(db.StoreError, match="may not create tables in schema"):
            db.migrate(url, other)
    finally:
        run_sql(postgres_url, f"DROP SCHEMA {other} CASCADE")


def test_upgrading_the_role_records_the_new_version(postgres_url: str, stack: tuple[str, str, str]) -> None:
    name, schema, role = stack
    password = uuid.uuid4().hex
    run_sql(postgres_url, deployer_role_sql(name, schema, version=1).replace(PASSWORD_PLACEHOLDER, password))
    url = as_role(postgres_url, role, password)
    assert deployer_role_version(url) == 1
    run_sql(postgres_url, deployer_role_sql(name, schema, version=2))
    assert deployer_role_version(url) == 2  # still the same password


def test_superuser_and_missing_schema_are_reported(postgres_url: str) -> None:
    problems = check_privileges(postgres_url, "onca_never_created")
    assert [p for p in problems if p.startswith("warning:") and "superuser" in p]
    assert deployer_role_version(postgres_url) is None


def test_a_role_that_cannot_create_its_schema(postgres_url: str, stack: tuple[str, str, str]) -> None:
    _, schema, role = stack
    run_sql(postgres_url, f"CREATE ROLE \"{role}\" LOGIN PASSWORD 'pw'")
    problems = check_privileges(as_role(postgres_url, role, "pw"), schema)
    assert problems == [f"schema {schema} does not exist and {role} cannot create it: run the SQL of "
                        f"`onca deployer-role` as an administrator"]


def test_unreachable_database_is_a_finding() -> None:
    problems = check_privileges("postgresql://nobody:x@127.0.0.1:1/none", "onca_x")
    assert len(problems) == 1 and problems[0].startswith("cannot check privileges")


def test_not_applicable_to_sqlite(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'metadata.db'}"
    assert check_privileges(url, "onca_x") == []
    assert deployer_role_version(url) is None


def test_overlong_role_names_are_refused() -> None:
    with pytest.raises(ValueError, match="63"):
        deployer_role_sql("onca-" + "x" * 60, "onca_x")
