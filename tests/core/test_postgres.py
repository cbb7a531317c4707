"""The core and onboard handlers on PostgreSQL, in the stack's own schema."""

from __future__ import annotations

import uuid
from pathlib import Path

from sqlalchemy import select, text

from onca.core import access, users
from onca.deploy.components import core, onboard
from onca.deploy.parameters import resolve
from onca.deploy.resources import DeployContext
from onca.store.db import make_engine, migrate, session_scope
from onca.store.models import Source, User


def test_components_on_postgres(postgres_url: str, home: Path) -> None:
    stack = f"onca-t{uuid.uuid4().hex[:10]}"
    schema = stack.replace("-", "_")
    params, _ = resolve({"FirstUserEmail": "admin@example.com", "MetadataDatabaseUrl": postgres_url,
                         "SupportRoleIdentityAccountId": "vendor-support"}, None)
    ctx = DeployContext(home=home, stack_name=stack, params=params, version="0.1.0", first_deploy=True)
    migrate(postgres_url, schema)
    engine = make_engine(postgres_url, schema)
    try:
        created = []
        for component in (core.component(), onboard.component()):
            for res in component.resources:
                props = res.properties(ctx)
                created.append((res, props, res.create(ctx, props)))
        with session_scope(engine) as session:
            admin = session.scalars(select(User)).one()
            assert (admin.email, admin.role, admin.status) == ("admin@example.com", "Admin", "invited")
            token = ctx.notices[0].split("token=")[1].split()[0]
            users.redeem_invite(session, token, "correct horse battery")
            assert access.authorize(session, "admin@example.com", "users:write")
            assert access.authorize(session, "vendor-support", "health:read")
            assert not access.authorize(session, "vendor-support", "logs:read")
            assert [s.name for s in session.scalars(select(Source))] == [f"{stack}-audit"]
        for res, props, outputs in reversed(created):
            res.delete(ctx, props, outputs)
        with session_scope(engine) as session:
            assert session.scalars(select(User)).all() == [] and session.scalars(select(Source)).all() == []
            assert access.roles_of(session, "vendor-support") == set()
    finally:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()
