"""Error reporting to Sentry, on only when SentryEnvironment is non-blank and a DSN is set.

The core component records the choice in <home>/config/error_reporting.json (mode 0600, the DSN
encrypted with the deployment keyring when there is one); every Onca process calls `configure(home)`
at start. Reports carry no local variables and no request bodies, because those may hold log data.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONFIG_PATH = Path("config") / "error_reporting.json"
KEYRING_PATH = Path("config") / "keyring.key"


@dataclass(frozen=True)
class ErrorReportingConfig:
    environment: str
    dsn: str

    @property
    def enabled(self) -> bool:
        return bool(self.environment.strip()) and bool(self.dsn.strip())


def _fernet(home: Path) -> Any | None:
    """The keyring's Fernet, or None when the home has no keyring (then the file's mode protects it)."""
    key_file = home / KEYRING_PATH
    if not key_file.exists():
        return None
    from cryptography.fernet import Fernet

    return Fernet(key_file.read_bytes().strip())


def write_config(home: Path, environment: str, dsn: str) -> Path:
    """Record the error-reporting choice atomically, readable by the owner only."""
    path = home / CONFIG_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    fernet = _fernet(home)
    stored_dsn = fernet.encrypt(dsn.encode()).decode() if fernet is not None and dsn else dsn
    document = {
        "environment": environment or "",
        "dsn": stored_dsn or "",
        "dsn_encryption": "fernet" if fernet is not None and dsn else "none",
        "enabled": ErrorReportingConfig(environment or "", dsn or "").enabled,
    }
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=2)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(temporary, 0o600)  # in case the file pre-existed with a wider mode
    os.replace(temporary, path)
    return path


def read_config(home: Path) -> ErrorReportingConfig:
    """What the core component recorded; absent or unreadable means off."""
    path = home / CONFIG_PATH
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ErrorReportingConfig("", "")
    dsn = str(document.get("dsn") or "")
    if dsn and document.get("dsn_encryption") == "fernet":
        fernet = _fernet(home)
        if fernet is None:
            return ErrorReportingConfig(str(document.get("environment") or ""), "")
        from cryptography.fernet import InvalidToken

        try:
            dsn = fernet.decrypt(dsn.encode()).decode()
        except InvalidToken:
            return ErrorReportingConfig(str(document.get("environment") or ""), "")
    return ErrorReportingConfig(str(document.get("environment") or ""), dsn)


def configure(home: Path, release: str | None = None) -> bool:
    """Start error reporting when the recorded config enables it; returns whether it is on.

    When it is off, any client a previous call started is closed, so turning the parameter off
    takes effect in a long-lived process too.
    """
    import sentry_sdk

    config = read_config(Path(home))
    if not config.enabled:
        shutdown()
        return False
    if release is None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            release = f"onca@{version('onca')}"
        except PackageNotFoundError:
            release = None
    sentry_sdk.init(
        dsn=config.dsn,
        environment=config.environment,
        release=release,
        # No PII option is passed: the SDK's default is to send none (and the option's name is changing).
        include_local_variables=False,
        max_request_body_size="never",
        traces_sample_rate=0.0,
    )
    return True


def shutdown(timeout: float = 2.0) -> None:
    """Flush and close the active client, if any."""
    import sentry_sdk

    client = sentry_sdk.get_client()
    if client.is_active():
        client.close(timeout=timeout)
    # Drop the closed client too, so is_active() and capture_* behave as "off" from now on.
    sentry_sdk.get_global_scope().set_client(None)
