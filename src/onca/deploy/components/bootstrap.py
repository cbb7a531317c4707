"""The bootstrap component: the home's layout, the keyring, the metadata database and the lake directory.

Everything later components need exists once this component is in place. Nothing here ever deletes
data it did not create empty: the lake and non-empty home directories are kept, and the keyring is
created once and never rotated by an update (secrets encrypted with it would become unreadable).
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from cryptography.fernet import Fernet
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from onca.deploy.resources import Component, DeployContext, Json, Resource, ResourceFailure, injected_fault
from onca.store import db

COMPONENT = "bootstrap"
HOME_DIRS = ("config", "content", "python", "backups", "spool", "audit", "logs")
KEYRING = Path("config") / "keyring.key"


def _private_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)


def keyring_path(home: Path) -> Path:
    return home / KEYRING


def load_fernet(home: Path) -> Fernet:
    """The deployment's Fernet (secrets at rest); fails clearly when the keyring is missing or damaged."""
    path = keyring_path(home)
    try:
        return Fernet(path.read_bytes().strip())
    except FileNotFoundError as err:
        raise ResourceFailure(f"the keyring {path} is missing: run `onca deploy`") from err
    except ValueError as err:
        raise ResourceFailure(f"the keyring {path} is not a valid Fernet key") from err


class HomeLayout(Resource):
    """The home (0700) and its subdirectories."""

    name = "HomeLayout"

    def properties(self, ctx: DeployContext) -> Json:
        return {"home": str(ctx.home), "directories": list(HOME_DIRS)}

    def create(self, ctx: DeployContext, props: Json) -> Json:
        injected_fault(COMPONENT, self.name, "create")
        return self._ensure(ctx)

    def update(self, ctx: DeployContext, old: Json, new: Json, outputs: Json) -> Json:
        injected_fault(COMPONENT, self.name, "update")
        return self._ensure(ctx)

    def _ensure(self, ctx: DeployContext) -> Json:
        _private_dir(ctx.home)
        for name in HOME_DIRS:
            _private_dir(ctx.home / name)
        return {"home": str(ctx.home)}

    def delete(self, ctx: DeployContext, props: Json, outputs: Json) -> None:
        injected_fault(COMPONENT, self.name, "delete")
        # Only empty directories go: backups, audit files and logs outlive a rollback or a teardown, and the
        # home itself holds the ledger.
        for name in reversed(props.get("directories") or HOME_DIRS):
            path = ctx.home / name
            try:
                path.rmdir()
            except FileNotFoundError:
                pass
            except OSError:
                ctx.warn(f"kept {path}: it is not empty")


class Keyring(Resource):
    """A Fernet key, config/keyring.key (0600): created once, adopted when present, never rotated."""

    name = "Keyring"

    def properties(self, ctx: DeployContext) -> Json:
        return {"path": str(KEYRING)}

    def create(self, ctx: DeployContext, props: Json) -> Json:
        injected_fault(COMPONENT, self.name, "create")
        return self._ensure(ctx)

    def update(self, ctx: DeployContext, old: Json, new: Json, outputs: Json) -> Json:
        injected_fault(COMPONENT, self.name, "update")
        return self._ensure(ctx)

    def _ensure(self, ctx: DeployContext) -> Json:
        path = keyring_path(ctx.home)
        _private_dir(path.parent)
        if not path.exists():
            key = Fernet.generate_key()
            partial = path.with_name(path.name + ".partial")
            partial.unlink(missing_ok=True)
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(key + b"\n")
                handle.flush()
                os.fsync(handle.fileno())
            # link() fails if a key appeared meanwhile: the first key written always wins, none is overwritten.
            try:
                os.link(partial, path)
            except FileExistsError:
                pass
            finally:
                partial.unlink(missing_ok=True)
        if stat.S_IMODE(path.stat().st_mode) != 0o600:
            os.chmod(path, 0o600)
        load_fernet(ctx.home)  # a damaged key fails the deploy here, not later when a secret is read
        # A fingerprint (not the key) tells operators and tests whether the key ever changed.
        fingerprint = hashlib.sha256(path.read_bytes().strip()).hexdigest()[:16]
        return {"path": str(path), "fingerprint": fingerprint}

    def delete(self, ctx: DeployContext, props: Json, outputs: Json) -> None:
        injected_fault(COMPONENT, self.name, "delete")
        # Reached on teardown and when a first deploy rolls back; an update never deletes the keyring.
        keyring_path(ctx.home).unlink(missing_ok=True)


class MetadataDatabase(Resource):
    """The metadata database, migrated to this release's head revision."""

    name = "MetadataDatabase"

    def properties(self, ctx: DeployContext) -> Json:
        # Never the password: properties are recorded in the ledger.
        return {"url": db.redact(ctx.database_url), "schema": self._schema(ctx), "revision": db.head_revision()}

    @staticmethod
    def _schema(ctx: DeployContext) -> str | None:
        return ctx.schema if db.backend(ctx.database_url) == "postgresql" else None

    def create(self, ctx: DeployContext, props: Json) -> Json:
        injected_fault(COMPONENT, self.name, "create")
        return self._migrate(ctx)

    def update(self, ctx: DeployContext, old: Json, new: Json, outputs: Json) -> Json:
        injected_fault(COMPONENT, self.name, "update")
        if old.get("url") != new.get("url") or old.get("schema") != new.get("schema"):
            ctx.warn(f"the metadata database moved from {old.get('url')} to {new.get('url')}: the new one is "
                     f"migrated, but nothing is copied from the old one (restore a backup into it if needed)")
        return self._migrate(ctx)

    def _migrate(self, ctx: DeployContext) -> Json:
        url, schema = ctx.database_url, self._schema(ctx)
        try:
            revision = db.migrate(url, schema, "head")
        except db.StoreError as err:
            raise ResourceFailure(str(err)) from err
        except OperationalError as err:  # unreachable server, bad password, missing database...
            reason = str(err.orig or err).strip().splitlines()[0]
            raise ResourceFailure(f"cannot reach the metadata database {db.redact(url)}: {reason}") from err
        return {"url": db.redact(url), "backend": db.backend(url), "schema": schema, "revision": revision}

    def delete(self, ctx: DeployContext, props: Json, outputs: Json) -> None:
        injected_fault(COMPONENT, self.name, "delete")
        url = self._url_for(ctx, props)
        path = db.sqlite_path(url)
        if db.backend(url) == "sqlite":
            if path is not None:
                for suffix in ("", "-wal", "-shm", "-journal"):
                    Path(f"{path}{suffix}").unlink(missing_ok=True)
            return
        from onca.store.snapshot import drop_all

        schema = props.get("schema") or ctx.schema
        engine = db.make_engine(url, schema)
        try:
            with engine.begin() as conn:
                # Drop the tables of the stack's own schema; the schema itself belongs to the administrator
                # who created it for the deployer role (see `onca deployer-role`).
                exists = conn.execute(text("SELECT 1 FROM pg_namespace WHERE nspname = :n"), {"n": schema}).first()
                if exists:
                    drop_all(conn)
        finally:
            engine.dispose()

    @staticmethod
    def _url_for(ctx: DeployContext, props: Json) -> str:
        """The URL of the database these properties describe, with its password when the parameters have it."""
        recorded = props.get("url")
        if not recorded or recorded == db.redact(ctx.database_url):
            return ctx.database_url
        return str(recorded)  # an earlier database: connect without a password (.pgpass, peer) or fail clearly


class LakeDirectory(Resource):
    """The data lake's directory. Deleting it removes only an empty directory: lake data is never deleted here."""

    name = "LakeDirectory"

    def properties(self, ctx: DeployContext) -> Json:
        return {"path": str(ctx.lake_dir)}

    def create(self, ctx: DeployContext, props: Json) -> Json:
        injected_fault(COMPONENT, self.name, "create")
        return self._ensure(ctx)

    def update(self, ctx: DeployContext, old: Json, new: Json, outputs: Json) -> Json:
        injected_fault(COMPONENT, self.name, "update")
        if old.get("path") != new.get("path") and Path(old.get("path") or "").is_dir():
            ctx.warn(f"the lake moved to {new.get('path')}; data under {old.get('path')} was left where it is")
        return self._ensure(ctx)

    def _ensure(self, ctx: DeployContext) -> Json:
        path = ctx.lake_dir
        if path.exists() and not path.is_dir():
            raise ResourceFailure(f"LakeLocation {path} exists and is not a directory")
        if not path.exists():
            path.mkdir(parents=True, mode=0o700)
        if not os.access(path, os.W_OK | os.X_OK):
            raise ResourceFailure(f"LakeLocation {path} is not writable")
        return {"path": str(path)}

    def delete(self, ctx: DeployContext, props: Json, outputs: Json) -> None:
        injected_fault(COMPONENT, self.name, "delete")
        path = Path(props.get("path") or ctx.lake_dir)
        try:
            path.rmdir()
        except FileNotFoundError:
            pass
        except OSError:
            ctx.warn(f"kept the lake {path}: it holds data (`onca teardown --delete-data` removes it)")


def component() -> Component:
    return Component(COMPONENT, [HomeLayout(), Keyring(), MetadataDatabase(), LakeDirectory()],
                     "home layout, keyring, metadata database and lake directory")
