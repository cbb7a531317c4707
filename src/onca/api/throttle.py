"""Login rate limiting, per account and per client address, kept in the metadata database.

After FREE_FAILURES failed sign-ins a key is locked for BASE_LOCK, doubling with each further failure
up to MAX_LOCK. While locked, sign-in is refused without looking at the password, so guessing gains
nothing. Failures are forgotten after FORGET_AFTER without one; a successful sign-in clears the account
key (not the address key: one known password must not reset an address that is guessing others).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from onca.store.models import LoginThrottle, utcnow

FREE_FAILURES = 5
BASE_LOCK = timedelta(seconds=30)
MAX_LOCK = timedelta(hours=1)
FORGET_AFTER = timedelta(hours=1)
# An address that fails for many accounts (a spray) gets more room than one account, but not unlimited.
IP_FREE_FAILURES = 20


def keys(email: str, address: str) -> tuple[str, str]:
    return f"account:{(email or '').strip().lower()[:320]}", f"ip:{address[:64]}"


def _free(key: str) -> int:
    return IP_FREE_FAILURES if key.startswith("ip:") else FREE_FAILURES


def locked_until(db: Session, *keys_: str, now: datetime | None = None) -> datetime | None:
    """The latest lockout end among `keys_`, when one is still running."""
    moment = now or utcnow()
    ends = [row.locked_until for key in keys_ if (row := db.get(LoginThrottle, key)) is not None
            and row.locked_until is not None and row.locked_until > moment]
    return max(ends) if ends else None


def failed(db: Session, *keys_: str, now: datetime | None = None) -> None:
    moment = now or utcnow()
    for key in keys_:
        row = db.get(LoginThrottle, key)
        if row is None:
            row = LoginThrottle(key=key, failures=0, last_failure_at=moment)
            db.add(row)
        elif moment - row.last_failure_at > FORGET_AFTER:
            row.failures, row.locked_until = 0, None
        row.failures += 1
        row.last_failure_at = moment
        over = row.failures - _free(key)
        if over >= 0:
            row.locked_until = moment + min(BASE_LOCK * (2 ** min(over, 16)), MAX_LOCK)
    db.flush()


def succeeded(db: Session, account_key: str) -> None:
    row = db.get(LoginThrottle, account_key)
    if row is not None:
        db.delete(row)
        db.flush()
