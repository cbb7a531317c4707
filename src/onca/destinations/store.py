"""Configured destinations in the metadata database: add, list, remove, and send a test alert."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.fernet import Fernet
from sqlalchemy import select
from sqlalchemy.orm import Session

from onca.destinations import registry
from onca.destinations.base import DEFAULT_TIMEOUT, SEVERITIES, Alert, ConfigError, Result
from onca.destinations.outbox import load_destination, send_one
from onca.destinations.secrets import encrypt_config, masked
from onca.store import models

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,199}$")


class DestinationError(ValueError):
    """A destination cannot be added, found or removed as asked."""


@dataclass(frozen=True)
class DestinationView:
    """A destination as listings show it: the config with every secret masked."""

    id: int
    name: str
    kind: str
    enabled: bool
    severities: list[str]
    log_types: list[str]
    config: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "kind": self.kind, "enabled": self.enabled,
                "severities": self.severities, "log_types": self.log_types, "config": self.config}


def normalize_severities(values: Iterable[str]) -> list[str]:
    result: list[str] = []
    for value in values:
        for item in value.split(","):
            name = item.strip().upper()
            if not name:
                continue
            if name not in SEVERITIES:
                problem = f"{item.strip()!r} is not one of {', '.join(SEVERITIES)}"
                raise ConfigError("destination", {"severity": problem})
            if name not in result:
                result.append(name)
    return result


def split_values(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(item.strip() for value in values for item in value.split(",") if item.strip()))


def add(session: Session, fernet: Fernet, name: str, kind: str, raw: Mapping[str, Any], *,
        severities: Iterable[str] = (), log_types: Iterable[str] = (), enabled: bool = True,
        replace: bool = False) -> models.Destination:
    """Validate and store (encrypted) a destination. ConfigError names the bad fields."""
    if not NAME.match(name or ""):
        raise ConfigError("destination", {"name": "must be 1-200 letters, digits, spaces, '.', '_' or '-', "
                                                  "starting with a letter or digit"})
    destination = registry.kind_of(kind)
    config = registry.validate(destination.kind, raw)
    chosen = normalize_severities(severities)
    types = split_values(log_types)
    row = get(session, name, required=False)
    if row is not None and not replace:
        raise DestinationError(f"a destination named {name!r} already exists (use --replace to change it)")
    now = datetime.now(UTC)
    if row is None:
        row = models.Destination(name=name, created_at=now)
        session.add(row)
    row.kind, row.config_encrypted = destination.kind, encrypt_config(fernet, config)
    row.severities, row.log_types, row.enabled, row.updated_at = chosen, types, enabled, now
    session.flush()
    return row


def get(session: Session, name: str, *, required: bool = True) -> models.Destination | None:
    row = session.scalars(select(models.Destination).where(models.Destination.name == name)).first()
    if row is None and required:
        raise DestinationError(f"no destination named {name!r} (`onca destinations list` shows them)")
    return row


def remove(session: Session, name: str) -> None:
    """Delete the destination; rows still waiting for it in the outbox fail with a clear reason when due."""
    row = get(session, name)
    session.delete(row)
    session.flush()


def views(session: Session, fernet: Fernet) -> list[DestinationView]:
    result = []
    for row in session.scalars(select(models.Destination).order_by(models.Destination.name)):
        try:
            _, config = load_destination(row, fernet)
            shown = masked(config)
        except Exception as err:  # a listing must not die on one bad row; say what is wrong with it
            shown = {"error": str(err)}
        result.append(DestinationView(row.id, row.name, row.kind, bool(row.enabled), list(row.severities or []),
                                      list(row.log_types or []), shown))
    return result


def send_test(session: Session, fernet: Fernet, name: str, timeout: float = DEFAULT_TIMEOUT) -> Result:
    """Send a test alert to the destination now (not through the outbox) and return the answer."""
    row = get(session, name)
    assert row is not None
    kind, config = load_destination(row, fernet)
    return send_one(kind, Alert.test_alert(name), config, timeout)
