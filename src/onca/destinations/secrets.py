"""Destination configs at rest: the whole config encrypted with the deployment's Fernet keyring.

The database holds only ciphertext, so a copy of metadata.db (a backup, a snapshot) reveals no token
without the keyring. Listings use `masked()`, which never contains a secret field's value.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from onca.destinations.base import DestinationConfig, mask_url

MASK = "****"


class SecretError(RuntimeError):
    """A stored config cannot be decrypted (another deployment's keyring, or damaged data)."""


def keyring(home: Path) -> Fernet:
    from onca.deploy.components.bootstrap import load_fernet

    return load_fernet(home)


def encrypt_config(fernet: Fernet, config: DestinationConfig | Mapping[str, Any]) -> str:
    data = config.model_dump() if isinstance(config, DestinationConfig) else dict(config)
    return fernet.encrypt(json.dumps(data, sort_keys=True).encode()).decode()


def decrypt_config(fernet: Fernet, token: str) -> dict[str, Any]:
    try:
        data = json.loads(fernet.decrypt(token.encode() if isinstance(token, str) else token))
    except InvalidToken as err:
        raise SecretError("the destination's config cannot be decrypted with this deployment's keyring") from err
    if not isinstance(data, dict):
        raise SecretError("the destination's stored config is not an object")
    return data


def masked(config: DestinationConfig) -> dict[str, Any]:
    """The config for display: secret fields replaced (URLs keep only scheme and host)."""
    data = config.model_dump()
    for name in type(config).secret_fields:
        value = data.get(name)
        if not value:
            continue
        if isinstance(value, str) and "://" in value:
            data[name] = mask_url(value)
        elif isinstance(value, dict):
            data[name] = {key: MASK for key in value}
        else:
            data[name] = MASK
    return data
