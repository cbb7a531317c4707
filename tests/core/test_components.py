"""The core and onboard components' handlers against a real migrated SQLite metadata database."""

from __future__ import annotations

import json
import re
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from onca.core import access, audit, error_reporting, users
from onca.deploy.components import core, onboard
from onca.deploy.resources import Resource, ResourceFailure
from onca.detections.enablement import DISABLED_SETTING
from onca.store.models import AuditLog, Invite, RoleBinding, Setting, Source, User

from .conftest import ContextMaker, Mailbox

Sessions = Callable[[], Any]


def resource(component: Any, name: str) -> Resource:
    return next(r for r in component.component().resources if r.name == name)


def token_from(notice: str) -> str:
    match = re.search(r"/invite\?token=([\w-]+)", notice)
    assert match, notice
    return match[1]


def test_component_shapes() -> None:
    assert [r.name for r in core.component().resources] == [
        "FirstAdmin", "SupportRoleBinding", "OperationsRoleBinding", "ErrorReporting"]
    assert [r.name for r in onboard.component().resources] == ["AuditLogSource", "AuditDetections"]
    assert core.component().name == "core" and onboard.component().name == "onboard"


# ---- FirstAdmin ---------------------------------------------------------------------------------------------

def test_first_admin_create_prints_a_working_invite(make_ctx: ContextMaker, session_factory: Sessions) -> None:
    ctx = make_ctx(FirstUserEmail="Admin@Example.com", WebListenAddress="127.0.0.1:8123")
    admin = resource(core, "FirstAdmin")
    props = admin.properties(ctx)
    assert props == {"email": "admin@example.com"}
    outputs = admin.create(ctx, props)
    assert outputs["email"] == "admin@example.com" and outputs["status"] == "invited" and not outputs["emailed"]
    assert "token" not in json.dumps(outputs)  # the secret link never goes to the ledger
    assert len(ctx.notices) == 1 and "http://127.0.0.1:8123/invite?token=" in ctx.notices[0]
    with session_factory() as session:
        user = users.redeem_invite(session, token_from(ctx.notices[0]), "correct horse battery")
        assert (user.email, user.role, user.status) == ("admin@example.com", "Admin", "active")
    actions = [r["action"] for r in audit.read(ctx.home)]
    assert actions == ["user.created", "user.invited"]
    with session_factory() as session:
        assert [r.action for r in session.scalars(select(AuditLog))] == actions


def test_first_admin_recreate_is_idempotent(make_ctx: ContextMaker, session_factory: Sessions) -> None:
    ctx = make_ctx()
    admin = resource(core, "FirstAdmin")
    first = admin.create(ctx, admin.properties(ctx))
    second = admin.create(ctx, admin.properties(ctx))
    assert first["user_id"] == second["user_id"]
    with session_factory() as session:
        assert len(session.scalars(select(User)).all()) == 1
        # Re-running issues a fresh link (the earlier one may never have been seen); only the newest works.
        with pytest.raises(users.InviteError, match="expired"):
            users.redeem_invite(session, token_from(ctx.notices[0]), "correct horse battery")
        users.redeem_invite(session, token_from(ctx.notices[1]), "correct horse battery")
    third = admin.create(ctx, admin.properties(ctx))
    assert third["status"] == "active" and len(ctx.notices) == 2  # an active admin gets no new invite


def test_first_admin_email_change_is_ignored(make_ctx: ContextMaker, session_factory: Sessions) -> None:
    ctx = make_ctx(FirstUserEmail="admin@example.com")
    admin = resource(core, "FirstAdmin")
    old = admin.properties(ctx)
    outputs = admin.create(ctx, old)
    # The parameter layer keeps the first value...
    later = make_ctx(first=False, previous=dict(ctx.params), FirstUserEmail="other@example.com")
    assert admin.properties(later) == old
    assert any("FirstUserEmail change" in w for w in make_ctx.warnings)
    # ...and the handler is robust even if a changed email reaches it.
    later.params = {**later.params, "FirstUserEmail": "other@example.com"}
    assert admin.update(later, old, admin.properties(later), outputs) == outputs
    assert any("ignored" in w and "other@example.com" in w for w in make_ctx.warnings)
    with session_factory() as session:
        assert [u.email for u in session.scalars(select(User))] == ["admin@example.com"]


def test_first_admin_delete(make_ctx: ContextMaker, session_factory: Sessions) -> None:
    ctx = make_ctx()
    admin = resource(core, "FirstAdmin")
    props = admin.properties(ctx)
    outputs = admin.create(ctx, props)
    admin.delete(ctx, props, outputs)
    admin.delete(ctx, props, outputs)  # already gone: still fine
    with session_factory() as session:
        assert session.scalars(select(User)).all() == [] and session.scalars(select(Invite)).all() == []
    (ctx.home / "metadata.db").unlink()
    admin.delete(ctx, props, outputs)  # the whole database gone: still fine


def test_first_admin_invite_is_emailed(make_ctx: ContextMaker, smtp_server: Callable[..., Mailbox]) -> None:
    box = smtp_server()
    ctx = make_ctx(SmtpUrl=box.url, SmtpFrom="onca@example.com", CustomDomain="siem.example.com")
    admin = resource(core, "FirstAdmin")
    outputs = admin.create(ctx, admin.properties(ctx))
    assert outputs["emailed"] is True
    message = box.messages[0]
    assert (message["To"], message["From"]) == ("admin@example.com", "onca@example.com")
    body = message.get_payload(decode=True).decode()
    assert f"http://siem.example.com/invite?token={token_from(ctx.notices[0])}" in body


def test_mail_failure_warns_but_keeps_the_deploy(make_ctx: ContextMaker) -> None:
    from .conftest import free_port

    ctx = make_ctx(SmtpUrl=f"smtp://127.0.0.1:{free_port()}")
    admin = resource(core, "FirstAdmin")
    outputs = admin.create(ctx, admin.properties(ctx))
    assert outputs["emailed"] is False and "/invite?token=" in ctx.notices[0]
    assert any("could not be sent" in w and "cannot connect" in w for w in make_ctx.warnings)


def test_unmigrated_database_fails_clearly(tmp_path: Path) -> None:
    from onca.deploy.resources import DeployContext

    ctx = DeployContext(home=tmp_path, stack_name="onca-test", params={"FirstUserEmail": "a@example.com"},
                        version="0.1.0", first_deploy=True)
    with pytest.raises(ResourceFailure, match="bootstrap component must migrate it first"):
        resource(core, "FirstAdmin").create(ctx, {"email": "a@example.com"})


# ---- role bindings ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "parameter", "role"), [
    ("SupportRoleBinding", "SupportRoleIdentityAccountId", "Support"),
    ("OperationsRoleBinding", "OpsRoleIdentityAccountId", "Operations"),
])
def test_role_binding_lifecycle(make_ctx: ContextMaker, session_factory: Sessions, name: str, parameter: str,
                                role: str) -> None:
    binding = resource(core, name)
    blank = make_ctx()
    assert binding.properties(blank) == {"identity": "", "role": role}
    out = binding.create(blank, binding.properties(blank))
    assert out == {"identity": "", "role": role, "enabled": False}
    with session_factory() as session:
        assert session.scalars(select(RoleBinding)).all() == []

    one = make_ctx(**{parameter: "vendor-a"})
    out = binding.update(one, binding.properties(blank), binding.properties(one), out)
    out = binding.create(one, binding.properties(one))  # idempotent re-create
    with session_factory() as session:
        assert access.roles_of(session, "vendor-a") == {role}
        assert len(session.scalars(select(RoleBinding)).all()) == 1

    two = make_ctx(**{parameter: "vendor-b"})
    out = binding.update(two, binding.properties(one), binding.properties(two), out)
    with session_factory() as session:
        assert access.roles_of(session, "vendor-a") == set() and access.roles_of(session, "vendor-b") == {role}
        access.bind_role(session, "someone-else", role, "console")  # not this resource's to remove

    binding.delete(two, binding.properties(two), out)
    binding.delete(two, binding.properties(two), out)
    with session_factory() as session:
        assert [(b.identity, b.role) for b in session.scalars(select(RoleBinding))] == [("someone-else", role)]
    actions = [(r["action"], r["target"]) for r in audit.read(two.home)]
    assert actions == [("role.granted", "vendor-a"), ("role.revoked", "vendor-a"), ("role.granted", "vendor-b"),
                       ("role.revoked", "vendor-b")]


def test_support_identity_is_refused_data(make_ctx: ContextMaker, session_factory: Sessions) -> None:
    ctx = make_ctx(SupportRoleIdentityAccountId="vendor-support")
    binding = resource(core, "SupportRoleBinding")
    binding.create(ctx, binding.properties(ctx))
    with session_factory() as session:
        assert access.authorize(session, "vendor-support", "health:read")
        for permission in ("logs:read", "alerts:read", "detections:read", "search:run"):
            with pytest.raises(access.AccessDenied):
                access.require(session, "vendor-support", permission)


# ---- error reporting ----------------------------------------------------------------------------------------

def test_error_reporting_resource(make_ctx: ContextMaker) -> None:
    reporting = resource(core, "ErrorReporting")
    ctx = make_ctx()  # SentryEnvironment defaults to prod, no DSN: off
    props = reporting.properties(ctx)
    assert props == {"environment": "prod", "dsn_fingerprint": "", "enabled": False}
    out = reporting.create(ctx, props)
    path = ctx.home / "config" / "error_reporting.json"
    assert out == {"path": "config/error_reporting.json", "enabled": False}
    assert not error_reporting.read_config(ctx.home).enabled

    dsn = "https://secretkey@sentry.example.com/3"
    on = make_ctx(SentryDsn=dsn, SentryEnvironment="staging")
    new = reporting.properties(on)
    assert new["enabled"] and new["dsn_fingerprint"] and "secretkey" not in json.dumps(new)
    out = reporting.update(on, props, new, out)
    assert out["enabled"] and stat.S_IMODE(path.stat().st_mode) == 0o600 and "secretkey" not in path.read_text()
    assert error_reporting.read_config(on.home) == error_reporting.ErrorReportingConfig("staging", dsn)

    blank = make_ctx(SentryDsn=dsn, SentryEnvironment="")
    out = reporting.update(blank, new, reporting.properties(blank), out)
    assert not out["enabled"] and not error_reporting.read_config(blank.home).enabled

    reporting.delete(blank, reporting.properties(blank), out)
    reporting.delete(blank, reporting.properties(blank), out)
    assert not path.exists()


def test_error_reporting_refuses_props_from_other_params(make_ctx: ContextMaker) -> None:
    reporting = resource(core, "ErrorReporting")
    on = make_ctx(SentryDsn="https://k@sentry.example.com/3")
    off = make_ctx()
    with pytest.raises(ResourceFailure, match="SentryDsn does not match"):
        reporting.create(off, reporting.properties(on))


# ---- faults -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("component", [core, onboard])
@pytest.mark.parametrize("action", ["create", "update", "delete"])
def test_every_handler_honours_injected_faults(make_ctx: ContextMaker, monkeypatch: pytest.MonkeyPatch,
                                               component: Any, action: str) -> None:
    ctx = make_ctx()
    for res in component.component().resources:
        monkeypatch.setenv("ONCA_FAULT", f"{component.component().name}/{res.name}:{action}")
        props = res.properties(ctx)
        with pytest.raises(ResourceFailure, match=f"injected fault: .*/{res.name} {action}"):
            if action == "create":
                res.create(ctx, props)
            elif action == "update":
                res.update(ctx, props, props, {})
            else:
                res.delete(ctx, props, {})
    with_audit = list(audit.read(ctx.home))
    assert with_audit == []  # a fault strikes before anything is touched


# ---- onboard ------------------------------------------------------------------------------------------------

def test_audit_rule_ids_are_the_shipped_detections() -> None:
    ids = onboard.audit_rule_ids()
    assert len(ids) >= 4 and all(i.startswith("Onca.Audit.") for i in ids)
    assert "Onca.Audit.RepeatedFailedLogins" in ids


def test_audit_log_source_lifecycle(make_ctx: ContextMaker, session_factory: Sessions) -> None:
    source = resource(onboard, "AuditLogSource")
    ctx = make_ctx()
    props = source.properties(ctx)
    assert props == {"enabled": True, "name": "onca-test-audit", "kind": "file", "log_types": ["Onca.Audit"],
                     "path": str(ctx.home / "audit")}
    out = source.create(ctx, props)
    again = source.create(ctx, props)
    assert out == again and out["enabled"]
    with session_factory() as session:
        row = session.scalars(select(Source)).one()
        assert (row.name, row.kind, row.log_types, row.enabled) == ("onca-test-audit", "file", ["Onca.Audit"], True)
        assert row.config["path"] == str(ctx.home / "audit") and (ctx.home / "audit").is_dir()

    off = make_ctx(OnboardSelf=False)
    off_props = source.properties(off)
    assert off_props["enabled"] is False
    out = source.update(off, props, off_props, out)
    assert out == {"source_id": None, "enabled": False}
    with session_factory() as session:
        assert session.scalars(select(Source)).all() == []

    out = source.update(ctx, off_props, props, out)
    assert out["enabled"]
    source.delete(ctx, props, out)
    source.delete(ctx, props, out)
    with session_factory() as session:
        assert session.scalars(select(Source)).all() == []
    assert [r["action"] for r in audit.read(ctx.home)] == [
        "source.created", "source.deleted", "source.created", "source.deleted"]


def test_audit_source_created_disabled_registers_nothing(make_ctx: ContextMaker, session_factory: Sessions) -> None:
    source = resource(onboard, "AuditLogSource")
    ctx = make_ctx(OnboardSelf="false")
    assert source.create(ctx, source.properties(ctx)) == {"source_id": None, "enabled": False}
    with session_factory() as session:
        assert session.scalars(select(Source)).all() == []


def test_audit_detections_lifecycle(make_ctx: ContextMaker, session_factory: Sessions) -> None:
    detections = resource(onboard, "AuditDetections")
    ctx = make_ctx()
    props = detections.properties(ctx)
    ids = onboard.audit_rule_ids()
    assert props == {"enabled": True, "log_type": "Onca.Audit", "rule_ids": ids}

    def disabled() -> list[str] | None:
        with session_factory() as session:
            setting = session.get(Setting, DISABLED_SETTING)
            return None if setting is None else setting.value

    with session_factory() as session:
        session.add(Setting(key=DISABLED_SETTING, value=["Other.Rule"]))
    out = detections.create(ctx, props)
    assert out == {"enabled": True, "rule_ids": ids} and disabled() == ["Other.Rule"]

    off = make_ctx(OnboardSelf=False)
    out = detections.update(off, props, detections.properties(off), out)
    assert out["enabled"] is False and disabled() == sorted(["Other.Rule", *ids])
    detections.create(off, detections.properties(off))  # idempotent
    assert disabled() == sorted(["Other.Rule", *ids])

    out = detections.update(ctx, detections.properties(off), props, out)
    assert disabled() == ["Other.Rule"]
    detections.delete(off, detections.properties(off), out)
    assert disabled() == ["Other.Rule"]  # other entries are never touched
    assert [r["action"] for r in audit.read(ctx.home)] == ["detections.disabled", "detections.enabled"]


def test_shipped_audit_detections_fire_on_records_onca_writes(home: Path) -> None:
    """The detections read the fields audit.record writes (run through the real engine by `onca test`)."""
    import subprocess
    import sys

    import yaml

    rules = Path(onboard.__file__).parents[2] / "content" / "rules" / "onca_audit"
    result = subprocess.run([sys.executable, "-m", "onca", "test", str(rules)], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Failed: 0" in result.stdout and "Invalid: 0" in result.stdout
    # Every test log has exactly the Onca.Audit fields (plus p_log_type), as audit.make_record produces them.
    produced = set(audit.make_record("a", "x", "t", {}, source_ip="192.0.2.1"))
    for spec_path in rules.glob("*.yml"):
        for test in yaml.safe_load(spec_path.read_text())["Tests"]:
            assert set(test["Log"]) - {"p_log_type"} <= produced, (spec_path.name, test["Name"])
