"""The least-privilege PostgreSQL role a stack deploys with, and checks of what a connection may do.

`onca deployer-role` prints SQL an administrator runs once (and again after an upgrade that raises
DEPLOYER_ROLE_VERSION): it creates or upgrades `<stack>-deployer`, a login role without SUPERUSER,
CREATEDB or CREATEROLE that owns only the stack's schema, and records the version in the role's
comment so preflight can compare it with what the release needs. The SQL is idempotent and never
resets the password of an existing role. None of this applies to SQLite.
"""

from __future__ import annotations

import re

from sqlalchemy import text

from onca.store import db

DEPLOYER_ROLE_VERSION = 1
NOT_APPLICABLE = "not applicable"
VERSION_MARK = "onca-deployer-role version"
PASSWORD_PLACEHOLDER = "CHANGE-ME-to-a-strong-password"


def applies(url: str) -> bool:
    """Whether deployer roles mean anything for this metadata database (PostgreSQL only)."""
    return db.backend(url) == "postgresql"


def default_role_name(stack_name: str) -> str:
    return f"{stack_name}-deployer"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def deployer_role_sql(stack_name: str, schema: str, role_name: str | None = None, password_placeholder: bool = True,
                      version: int = DEPLOYER_ROLE_VERSION) -> str:
    """Idempotent SQL creating or upgrading the deployer role of a stack (run it as a database administrator,
    connected to the stack's database).

    With `password_placeholder`, a new role gets the password PASSWORD_PLACEHOLDER, to be replaced before
    running; without it the role is created without a password (set one with psql's \\password).
    """
    db.check_schema(schema)
    role = role_name or default_role_name(stack_name)
    ident, literal = quote_ident(role), quote_literal(role)
    password = f" PASSWORD {quote_literal(PASSWORD_PLACEHOLDER)}" if password_placeholder else ""
    # The role name goes into a DO body, itself a dollar-quoted string: refuse a name that could end it.
    if "$" in role:
        raise ValueError(f"role name {role!r} must not contain $")
    if len(role.encode()) > 63:  # PostgreSQL would silently truncate it, and the IF NOT EXISTS check would miss
        raise ValueError(f"role name {role!r} is longer than PostgreSQL's 63 bytes; pass a shorter role name")
    lines = [
        f"-- Onca deployer role for stack {stack_name}, version {version}.",
        "-- Run as a PostgreSQL administrator, connected to the database the stack uses. Safe to run again:",
        "-- an existing role keeps its password and is brought to this version.",
        "BEGIN;",
        "DO $onca$",
        "BEGIN",
        f"  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = {literal}) THEN",
        f"    CREATE ROLE {ident} LOGIN{password};",
        "  END IF;",
        "END",
        "$onca$;",
        "-- Least privilege: no superuser, no new databases or roles, no replication, row security applies.",
        f"ALTER ROLE {ident} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT;",
        f"ALTER ROLE {ident} SET search_path = {schema};",
        "-- The stack's own schema, owned by the role: it may create, change and drop only what is in it.",
        f"CREATE SCHEMA IF NOT EXISTS {schema} AUTHORIZATION {ident};",
        f"ALTER SCHEMA {schema} OWNER TO {ident};",
        "DO $onca$",
        "BEGIN",
        f"  EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO %I', current_database(), {literal});",
        "END",
        "$onca$;",
        "-- Nobody creates objects in the public schema (the default since PostgreSQL 15; this database-wide",
        "-- change matters only for other roles that relied on the old default).",
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC;",
        f"REVOKE ALL ON SCHEMA public FROM {ident};",
        f"COMMENT ON ROLE {ident} IS {quote_literal(f'{VERSION_MARK} {version}')};",
        "COMMIT;",
    ]
    if password_placeholder:
        lines.insert(3, f"-- Replace {PASSWORD_PLACEHOLDER} below with the role's password before running.")
    return "\n".join(lines) + "\n"


def parse_version(comment: str | None) -> int | None:
    match = re.search(rf"{VERSION_MARK} (\d+)", comment or "")
    return int(match.group(1)) if match else None


def deployer_role_version(url: str) -> int | None:
    """The deployer-role version recorded for the role `url` connects as; None when there is none (and for SQLite)."""
    if not applies(url):
        return None
    engine = db.make_engine(url, "public")
    try:
        with engine.connect() as conn:
            comment = conn.execute(text(
                "SELECT pg_catalog.shobj_description(oid, 'pg_authid') FROM pg_catalog.pg_roles "
                "WHERE rolname = current_user")).scalar()
    finally:
        engine.dispose()
    return parse_version(comment)


def check_privileges(url: str, schema: str) -> list[str]:
    """What stops (or should worry) a deploy connecting with `url` into `schema`; empty when all is well.

    Messages starting with "warning:" do not block a deploy. SQLite: always empty (not applicable).
    """
    if not applies(url):
        return []
    db.check_schema(schema)
    engine = db.make_engine(url, schema)
    problems: list[str] = []
    try:
        with engine.connect() as conn:
            me = conn.execute(text(
                "SELECT current_user, rolsuper, rolcreatedb, rolcreaterole FROM pg_catalog.pg_roles "
                "WHERE rolname = current_user")).one()
            user, superuser, createdb, createrole = me
            if superuser:
                problems.append(f"warning: {user} is a superuser; deploy with the least-privilege role "
                                f"(`onca deployer-role` prints the SQL that creates it)")
            elif createdb or createrole:
                problems.append(f"warning: {user} may create {'databases' if createdb else 'roles'}, more than "
                                f"a deploy needs (`onca deployer-role` prints a least-privilege role)")
            owner = conn.execute(text(
                "SELECT pg_catalog.pg_get_userbyid(nspowner) FROM pg_catalog.pg_namespace WHERE nspname = :s"),
                {"s": schema}).scalar()
            if owner is None:
                can_create = conn.execute(text(
                    "SELECT has_database_privilege(current_database(), 'CREATE')")).scalar()
                if not can_create:
                    problems.append(f"schema {schema} does not exist and {user} cannot create it: run the SQL "
                                    f"of `onca deployer-role` as an administrator")
                return problems
            if not conn.execute(text("SELECT has_schema_privilege(:s, 'USAGE') AND has_schema_privilege(:s, "
                                     "'CREATE')"), {"s": schema}).scalar():
                problems.append(f"{user} cannot create tables in schema {schema} (owned by {owner}): grant it "
                                f"with `onca deployer-role`")
            foreign = conn.execute(text(
                "SELECT c.relname, pg_catalog.pg_get_userbyid(c.relowner) FROM pg_catalog.pg_class c "
                "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = :s "
                "AND c.relkind IN ('r', 'v', 'S', 'p') AND NOT pg_catalog.pg_has_role(c.relowner, 'USAGE') "
                "ORDER BY 1"), {"s": schema}).all()
            for name, other in foreign:
                problems.append(f"{schema}.{name} is owned by {other}, so {user} cannot migrate it: "
                                f"ALTER TABLE/SEQUENCE {schema}.{name} OWNER TO {quote_ident(user)}")
            if not superuser and conn.execute(text("SELECT has_schema_privilege('public', 'CREATE')")).scalar():
                problems.append(f"warning: {user} can create objects in schema public; a least-privilege "
                                f"deployer is limited to {schema}")
    except Exception as err:  # a connection or permission failure is itself the finding
        if isinstance(err, db.StoreError):
            raise
        return [f"cannot check privileges: {str(err).strip().splitlines()[0]}"]
    finally:
        engine.dispose()
    return problems
