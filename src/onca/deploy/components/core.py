"""The core component: the first administrator, the Support and Operations role bindings, error reporting.

Everything here lives in the metadata database (migrated by bootstrap) except the error-reporting
choice, recorded in <home>/config/error_reporting.json for every Onca process to read at start.
Changes the deployer makes are written to Onca's own audit log with the actor `onca-deploy`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import inspect
from sqlalchemy.orm import Session

from onca.core import audit, error_reporting
from onca.core.access import bind_role, bindings, normalize_identity, unbind_role
from onca.core.mail import MailError, invite_message, send_mail
from onca.core.users import (
    create_invite,
    delete_user,
    ensure_first_admin,
    get_user,
    invite_url,
    pending_invite,
    public_address,
)
from onca.deploy.resources import Component, DeployContext, Json, Resource, ResourceFailure, injected_fault
from onca.store.db import make_engine, session_scope, sqlite_path

COMPONENT = "core"
REQUIRED_TABLES = ("users", "invites", "role_bindings", "audit_log")


@contextmanager
def metadata_session(ctx: DeployContext) -> Iterator[Session]:
    """A committed-on-success session on the stack's metadata database; fails clearly if it is not migrated."""
    engine = make_engine(ctx.database_url, ctx.schema)
    try:
        missing = [name for name in REQUIRED_TABLES if not inspect(engine).has_table(name)]
        if missing:
            raise ResourceFailure(f"the metadata database has no {', '.join(missing)} table(s): "
                                  "the bootstrap component must migrate it first")
        with session_scope(engine) as session:
            yield session
    finally:
        engine.dispose()


def database_gone(ctx: DeployContext, table: str = "users") -> bool:
    """True when there is nothing left to delete from (no SQLite file, or the table is not there)."""
    path = sqlite_path(ctx.database_url)
    if path is not None and not path.exists():
        return True
    engine = make_engine(ctx.database_url, ctx.schema)
    try:
        return not inspect(engine).has_table(table)
    finally:
        engine.dispose()


def record(ctx: DeployContext, action: str, target: str, details: Json) -> None:
    """An audit record by the deployer, in the audit files and (when the database is there) in audit_log.

    Written after the change committed, so the audit log never claims a change that was rolled back
    by its own transaction.
    """
    details = {**details, "stack": ctx.stack_name}
    if database_gone(ctx, "audit_log"):
        audit.record(ctx.home, audit.DEPLOYER, action, target, details)
        return
    with metadata_session(ctx) as session:
        audit.record(ctx.home, audit.DEPLOYER, action, target, details, session=session)


def component() -> Component:
    return Component(COMPONENT, [FirstAdmin(), SupportRoleBinding(), OperationsRoleBinding(), ErrorReporting()],
                     "Users and roles (the first administrator, Support and Operations) and error reporting")


class FirstAdmin(Resource):
    """The Admin user named by FirstUserEmail, invited with a one-time link.

    FirstUserEmail only counts on the first deploy: the parameter layer keeps its first value, and this
    handler ignores a changed email on update too (with a warning), so a second admin is never made.
    """

    name = "FirstAdmin"

    def properties(self, ctx: DeployContext) -> Json:
        return {"email": str(ctx.params.get("FirstUserEmail") or "").strip().lower()}

    def create(self, ctx: DeployContext, props: Json) -> Json:
        injected_fault(COMPONENT, self.name, "create")
        return self._ensure(ctx, props)

    def update(self, ctx: DeployContext, old: Json, new: Json, outputs: Json) -> Json:
        injected_fault(COMPONENT, self.name, "update")
        if old.get("email") and new.get("email") != old.get("email"):
            ctx.warn(f"FirstUserEmail change to {new.get('email')!r} ignored: it only applies to the first deploy "
                     f"(the first admin is {old['email']!r})")
            return outputs
        return self._ensure(ctx, new)

    def delete(self, ctx: DeployContext, props: Json, outputs: Json) -> None:
        injected_fault(COMPONENT, self.name, "delete")
        email = props.get("email") or outputs.get("email")
        if not email or database_gone(ctx):
            return
        with metadata_session(ctx) as session:
            user = get_user(session, email)
            if user is None:
                return
            delete_user(session, user)
        record(ctx, "user.deleted", email, {"role": "Admin"})

    def _ensure(self, ctx: DeployContext, props: Json) -> Json:
        email = props.get("email") or ""
        if not email:
            raise ResourceFailure("FirstUserEmail is required to create the first administrator")
        token = None
        with metadata_session(ctx) as session:
            user, created = ensure_first_admin(session, email)
            if not created and user.role != "Admin":
                ctx.warn(f"{email} already exists with role {user.role}; it is left as it is")
            if user.status == "invited":
                # A fresh link each time: a link from an interrupted earlier run was perhaps never seen.
                token = create_invite(session, user)
                invite = pending_invite(session, user)
                expires = invite.expires_at.isoformat(timespec="seconds") if invite else ""
            outputs: Json = {"user_id": user.id, "email": user.email, "status": user.status}
        if created:
            record(ctx, audit.USER_CREATED, email, {"role": "Admin"})
        if token is None:
            return outputs
        address, tls = public_address(dict(ctx.params))
        url = invite_url(address, tls, token)
        emailed = self._email(ctx, email, url, expires)
        record(ctx, audit.USER_INVITED, email, {"expires_at": expires, "emailed": emailed})
        ctx.notices.append(f"First administrator {email}: set a password at {url} "
                           f"(one-time link, valid until {expires}{'; also emailed' if emailed else ''})")
        # The link itself is a secret: it goes to the operator, never into the ledger.
        outputs.update({"invite_expires_at": expires, "emailed": emailed})
        return outputs

    @staticmethod
    def _email(ctx: DeployContext, email: str, url: str, expires: str) -> bool:
        smtp_url = str(ctx.params.get("SmtpUrl") or "")
        if not smtp_url:
            return False
        subject, body = invite_message(email, url, expires)
        try:
            send_mail(smtp_url, str(ctx.params.get("SmtpFrom") or "onca@localhost"), email, subject, body)
        except MailError as err:
            # The printed link is enough to finish setting up; a mail problem must not undo the deploy.
            ctx.warn(f"the invite email to {email} could not be sent ({err}); use the printed link")
            return False
        return True


class _ParameterRoleBinding(Resource):
    """Binds the identity in one parameter to one role; blank means no binding, a change rebinds."""

    parameter = ""
    role = ""

    @property
    def source(self) -> str:
        return f"parameter:{self.parameter}"

    def properties(self, ctx: DeployContext) -> Json:
        return {"identity": normalize_identity(str(ctx.params.get(self.parameter) or "")), "role": self.role}

    def create(self, ctx: DeployContext, props: Json) -> Json:
        injected_fault(COMPONENT, self.name, "create")
        return self._apply(ctx, props.get("identity") or "")

    def update(self, ctx: DeployContext, old: Json, new: Json, outputs: Json) -> Json:
        injected_fault(COMPONENT, self.name, "update")
        return self._apply(ctx, new.get("identity") or "")

    def delete(self, ctx: DeployContext, props: Json, outputs: Json) -> None:
        injected_fault(COMPONENT, self.name, "delete")
        if database_gone(ctx, "role_bindings"):
            return
        self._apply(ctx, "")

    def _apply(self, ctx: DeployContext, identity: str) -> Json:
        """Make the bindings this parameter owns exactly {identity} (or none); others are never touched."""
        granted: list[str] = []
        revoked: list[str] = []
        with metadata_session(ctx) as session:
            for binding in bindings(session, role=self.role, source=self.source):
                if binding.identity != identity:
                    unbind_role(session, binding.identity, self.role, self.source)
                    revoked.append(binding.identity)
            if identity and bind_role(session, identity, self.role, self.source):
                granted.append(identity)
        for who in revoked:
            record(ctx, audit.ROLE_REVOKED, who, {"role": self.role, "source": self.source})
        for who in granted:
            record(ctx, audit.ROLE_GRANTED, who, {"role": self.role, "source": self.source})
        return {"identity": identity, "role": self.role, "enabled": bool(identity)}


class SupportRoleBinding(_ParameterRoleBinding):
    name = "SupportRoleBinding"
    parameter = "SupportRoleIdentityAccountId"
    role = "Support"


class OperationsRoleBinding(_ParameterRoleBinding):
    name = "OperationsRoleBinding"
    parameter = "OpsRoleIdentityAccountId"
    role = "Operations"


def _fingerprint(secret: str) -> str:
    # Enough to notice a change of DSN without putting the DSN (it holds a key) into the ledger.
    return hashlib.sha256(secret.encode()).hexdigest()[:16] if secret else ""


class ErrorReporting(Resource):
    """config/error_reporting.json: on only with a non-blank SentryEnvironment and a SentryDsn."""

    name = "ErrorReporting"

    def properties(self, ctx: DeployContext) -> Json:
        environment = str(ctx.params.get("SentryEnvironment") or "").strip()
        dsn = str(ctx.params.get("SentryDsn") or "").strip()
        return {"environment": environment, "dsn_fingerprint": _fingerprint(dsn),
                "enabled": bool(environment and dsn)}

    def create(self, ctx: DeployContext, props: Json) -> Json:
        injected_fault(COMPONENT, self.name, "create")
        return self._write(ctx, props)

    def update(self, ctx: DeployContext, old: Json, new: Json, outputs: Json) -> Json:
        injected_fault(COMPONENT, self.name, "update")
        return self._write(ctx, new)

    def delete(self, ctx: DeployContext, props: Json, outputs: Json) -> None:
        injected_fault(COMPONENT, self.name, "delete")
        (ctx.home / error_reporting.CONFIG_PATH).unlink(missing_ok=True)

    @staticmethod
    def _write(ctx: DeployContext, props: Json) -> Json:
        dsn = str(ctx.params.get("SentryDsn") or "").strip()
        if _fingerprint(dsn) != props.get("dsn_fingerprint"):
            raise ResourceFailure("SentryDsn does not match the properties being applied")
        error_reporting.write_config(ctx.home, str(props.get("environment") or ""), dsn)
        return {"path": str(error_reporting.CONFIG_PATH), "enabled": bool(props.get("enabled"))}
