"""A deployment whose metadata database is PostgreSQL, reached through the least-privilege deployer role."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
import pytest

from onca.deploy.deployer_role import PASSWORD_PLACEHOLDER, deployer_role_sql
from onca.deploy.preflight import PreflightFailed
from onca.deploy.stacks import Deployment

from .test_lifecycle import base_params


@pytest.fixture
def deployer(postgres_url: str) -> Iterator[tuple[str, str]]:
    """(stack name, URL as its deployer role), the role created with the SQL `onca deployer-role` prints."""
    stack = f"onca-pg{secrets.token_hex(3)}"
    role, password = f"{stack}-deployer", secrets.token_hex(12)
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(deployer_role_sql(stack, stack.replace("-", "_")).replace(PASSWORD_PLACEHOLDER, password))
    parts = urlsplit(postgres_url)
    netloc = f"{quote(role)}:{password}@{parts.hostname}:{parts.port}"
    yield stack, urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f'DROP SCHEMA IF EXISTS {stack.replace("-", "_")} CASCADE')
        admin.execute(f'DROP OWNED BY "{role}"')
        admin.execute(f'DROP ROLE IF EXISTS "{role}"')


def rows(url: str, schema: str) -> dict[str, list[tuple[object, ...]]]:
    with psycopg.connect(url) as conn:
        tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY 1",
                                             (schema,))]
        return {t: sorted(conn.execute(f'SELECT * FROM {schema}."{t}"').fetchall(), key=repr) for t in tables}


def test_deploy_update_rollback_on_postgres(tmp_path: Path, deployer: tuple[str, str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    stack, url = deployer
    schema = stack.replace("-", "_")
    deployment = Deployment(tmp_path / "home")
    outcome = deployment.deploy(stack, base_params(MetadataDatabaseUrl=url, SupportRoleIdentityAccountId="s1"))
    assert outcome.status == "CREATE_COMPLETE", outcome.error
    before = rows(url, schema)
    assert {"users", "invites", "role_bindings", "alembic_version"} <= set(before)
    assert len(before["users"]) == 1
    monkeypatch.setenv("ONCA_FAULT", "web/WebConfig:update")
    failed = deployment.deploy(stack, {"SupportRoleIdentityAccountId": "s2", "CustomDomain": "siem.example.com"})
    assert failed.status == "UPDATE_ROLLBACK_COMPLETE"
    assert rows(url, schema) == before  # the role binding change was undone by the snapshot restore
    deployment.close()


def test_preflight_refuses_a_role_older_than_the_release_needs(tmp_path: Path, deployer: tuple[str, str],
                                                               postgres_url: str) -> None:
    stack, url = deployer
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f'COMMENT ON ROLE "{stack}-deployer" IS NULL')
    deployment = Deployment(tmp_path / "home")
    with pytest.raises(PreflightFailed) as err:
        deployment.deploy(stack, base_params(MetadataDatabaseUrl=url))
    (check,) = [c for c in err.value.checks if c.result == "fail"]
    assert check.name == "deployer-role" and "onca deployer-role" in check.remedy
    assert rows(url, stack.replace("-", "_")) == {}
    deployment.close()
