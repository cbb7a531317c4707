"""API: Onca's audit log (who did what), newest first, filtered by actor, action and outcome, paginated."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from onca.api.deps import Principal, get_db, requires
from onca.store.models import AuditLog

router = APIRouter(prefix="/api/v1", tags=["audit"])

Db = Annotated[Session, Depends(get_db)]
Auditor = Annotated[Principal, Depends(requires("users:read"))]
MAX_LIMIT = 500


@dataclass(frozen=True)
class AuditFilter:
    actor: str = ""
    action: str = ""
    target: str = ""
    outcome: str = ""
    since: datetime | None = None
    until: datetime | None = None


def audit_json(row: AuditLog) -> dict[str, Any]:
    details = dict(row.details or {})
    return {"id": row.id, "at": row.at.isoformat(), "actor": row.actor, "action": row.action, "target": row.target,
            "outcome": details.pop("outcome", "success"), "source_ip": details.pop("source_ip", None),
            "details": details}


def search(db: Session, where: AuditFilter, page: int, limit: int) -> tuple[list[AuditLog], int]:
    """One page of matching records (newest first) and the total that match."""
    query = select(AuditLog)
    if where.actor:
        actor = where.actor.strip()
        query = query.where(AuditLog.actor == (actor.lower() if "@" in actor else actor))
    if where.action:
        # "user." lists every user action; a full name matches exactly.
        action = where.action.strip()
        query = query.where(AuditLog.action.startswith(action) if action.endswith(".") else AuditLog.action == action)
    if where.target:
        query = query.where(AuditLog.target == where.target.strip())
    if where.outcome:
        # The outcome travels inside details (JSON text); success is stored explicitly by core.audit.
        query = query.where(AuditLog.details.contains(f'"outcome":"{where.outcome}"'))
    if where.since is not None:
        query = query.where(AuditLog.at >= where.since)
    if where.until is not None:
        query = query.where(AuditLog.at < where.until)
    total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = db.scalars(query.order_by(AuditLog.at.desc(), AuditLog.id.desc()).offset((page - 1) * limit).limit(limit))
    return list(rows), total


@router.get("/audit")
def list_audit(db: Db, principal: Auditor, actor: str = "", action: str = "", target: str = "",
               outcome: Annotated[str, Query(pattern="^(|success|failure|denied)$")] = "",
               since: datetime | None = None, until: datetime | None = None,
               page: Annotated[int, Query(ge=1)] = 1,
               limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100) -> dict[str, Any]:
    rows, total = search(db, AuditFilter(actor, action, target, outcome, since, until), page, limit)
    return {"items": [audit_json(row) for row in rows], "total": total, "page": page, "limit": limit,
            "has_next": page * limit < total}
