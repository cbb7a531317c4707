from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from onca.deploy.components.bootstrap import (
    HOME_DIRS,
    HomeLayout,
    Keyring,
    LakeDirectory,
    MetadataDatabase,
    component,
    load_fernet,
)
from onca.deploy.resources import DeployContext, Resource, ResourceFailure
from onca.store import db
from onca.store.drift import check_drift


def context(home: Path, **params: Any) -> tuple[DeployContext, list[str]]:
    warnings: list[str] = []
    ctx = DeployContext(home=home, stack_name="onca-test", params=params, version="0.1.0", first_deploy=True,
                        warn=warnings.append)
    return ctx, warnings


def create(resource: Resource, ctx: DeployContext) -> dict[str, Any]:
    return resource.create(ctx, resource.properties(ctx))


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_component_order_and_names() -> None:
    built = component()
    assert built.name == "bootstrap"
    assert [r.name for r in built.resources] == ["HomeLayout", "Keyring", "MetadataDatabase", "LakeDirectory"]


def test_home_layout(tmp_path: Path) -> None:
    home = tmp_path / "home"
    ctx, warnings = context(home)
    layout = HomeLayout()
    assert create(layout, ctx) == {"home": str(home)}
    assert mode(home) == 0o700
    assert sorted(p.name for p in home.iterdir()) == sorted(HOME_DIRS)
    home.chmod(0o755)
    assert create(layout, ctx) == {"home": str(home)}  # idempotent, and it repairs the mode
    assert mode(home) == 0o700
    (home / "backups" / "b1").write_text("keep me")
    layout.delete(ctx, layout.properties(ctx), {})
    assert sorted(p.name for p in home.iterdir()) == ["backups"]
    assert (home / "backups" / "b1").read_text() == "keep me"
    assert warnings == [f"kept {home / 'backups'}: it is not empty"]
    layout.delete(ctx, layout.properties(ctx), {})  # deleting again succeeds


def test_keyring_is_created_once_and_never_rotated(tmp_path: Path) -> None:
    ctx, _ = context(tmp_path / "home")
    keyring = Keyring()
    first = create(keyring, ctx)
    path = Path(first["path"])
    assert path == ctx.home / "config" / "keyring.key"
    assert mode(path) == 0o600
    key = path.read_bytes()
    token = load_fernet(ctx.home).encrypt(b"secret")

    assert create(keyring, ctx) == first  # re-create adopts
    assert keyring.update(ctx, keyring.properties(ctx), keyring.properties(ctx), first) == first
    assert path.read_bytes() == key
    assert Fernet(key.strip()).decrypt(token) == b"secret"

    path.chmod(0o644)
    create(keyring, ctx)
    assert mode(path) == 0o600

    keyring.delete(ctx, keyring.properties(ctx), first)
    assert not path.exists()
    keyring.delete(ctx, keyring.properties(ctx), first)  # already gone
    assert create(keyring, ctx)["fingerprint"] != first["fingerprint"]  # a new deploy gets a new key


def test_a_damaged_keyring_fails_instead_of_being_replaced(tmp_path: Path) -> None:
    ctx, _ = context(tmp_path / "home")
    path = ctx.home / "config" / "keyring.key"
    path.parent.mkdir(parents=True)
    path.write_text("not a key")
    with pytest.raises(ResourceFailure, match="not a valid Fernet key"):
        create(Keyring(), ctx)
    assert path.read_text() == "not a key"


def test_metadata_database_on_sqlite(tmp_path: Path) -> None:
    ctx, _ = context(tmp_path / "home")
    resource = MetadataDatabase()
    props = resource.properties(ctx)
    assert props == {"url": f"sqlite:///{ctx.home / 'metadata.db'}", "schema": None,
                     "revision": db.head_revision()}
    outputs = resource.create(ctx, props)
    assert outputs == {"url": props["url"], "backend": "sqlite", "schema": None, "revision": db.head_revision()}
    assert resource.create(ctx, props) == outputs
    assert resource.update(ctx, props, props, outputs) == outputs
    assert check_drift(ctx.database_url, None, db.head_revision()) == []
    resource.delete(ctx, props, outputs)
    assert list(ctx.home.glob("metadata.db*")) == []
    resource.delete(ctx, props, outputs)


def test_metadata_database_on_postgres(postgres_url: str, tmp_path: Path) -> None:
    from tests.store.conftest import drop_schema, fresh_schema

    ctx, warnings = context(tmp_path / "home", MetadataDatabaseUrl=postgres_url)
    ctx.stack_name = fresh_schema().replace("_", "-")
    resource = MetadataDatabase()
    props = resource.properties(ctx)
    assert ":" not in props["url"].split("@")[0].removeprefix("postgresql://")  # no password recorded
    try:
        outputs = resource.create(ctx, props)
        assert outputs["revision"] == db.head_revision() and outputs["schema"] == ctx.schema
        assert outputs["url"] == props["url"]
        assert resource.create(ctx, props) == outputs
        assert db.table_names(postgres_url, ctx.schema)
        resource.delete(ctx, props, outputs)
        assert db.table_names(postgres_url, ctx.schema) == []
        resource.delete(ctx, props, outputs)
        assert warnings == []
    finally:
        drop_schema(postgres_url, ctx.schema)


def test_a_failed_migration_is_a_resource_failure(tmp_path: Path) -> None:
    ctx, _ = context(tmp_path / "home", MetadataDatabaseUrl="postgresql://u:p@127.0.0.1:1/d")
    with pytest.raises(ResourceFailure) as caught:
        create(MetadataDatabase(), ctx)
    assert str(caught.value).startswith("cannot reach the metadata database postgresql://u@127.0.0.1:1/d: ")
    assert ":p@" not in str(caught.value)


def test_lake_directory_never_deletes_data(tmp_path: Path) -> None:
    ctx, warnings = context(tmp_path / "home")
    lake = LakeDirectory()
    outputs = create(lake, ctx)
    assert outputs == {"path": str(ctx.home / "lake")}
    assert create(lake, ctx) == outputs
    (ctx.home / "lake" / "table").mkdir()
    (ctx.home / "lake" / "table" / "part-0.parquet").write_bytes(b"data")
    lake.delete(ctx, lake.properties(ctx), outputs)
    assert (ctx.home / "lake" / "table" / "part-0.parquet").read_bytes() == b"data"
    assert "holds data" in warnings[0]

    elsewhere, _ = context(tmp_path / "home2", LakeLocation=str(tmp_path / "custom" / "lake"))
    created = create(lake, elsewhere)
    assert created == {"path": str(tmp_path / "custom" / "lake")}
    lake.delete(elsewhere, lake.properties(elsewhere), created)
    assert not (tmp_path / "custom" / "lake").exists()
    lake.delete(elsewhere, lake.properties(elsewhere), created)


def test_lake_location_that_is_a_file_fails(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    ctx, _ = context(tmp_path / "home", LakeLocation=str(tmp_path / "file"))
    with pytest.raises(ResourceFailure, match="not a directory"):
        create(LakeDirectory(), ctx)


@pytest.mark.parametrize("resource", [HomeLayout(), Keyring(), MetadataDatabase(), LakeDirectory()],
                         ids=lambda r: r.name)
@pytest.mark.parametrize("action", ["create", "update", "delete"])
def test_every_handler_honours_injected_faults(resource: Resource, action: str, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    ctx, _ = context(tmp_path / "home")
    monkeypatch.setenv("ONCA_FAULT", f"bootstrap/{resource.name}:{action}")
    props = resource.properties(ctx)
    handlers = {"create": lambda: resource.create(ctx, props), "update": lambda: resource.update(ctx, props, props, {}),
                "delete": lambda: resource.delete(ctx, props, {})}
    with pytest.raises(ResourceFailure, match="injected fault"):
        handlers[action]()
    assert not ctx.home.exists()  # the fault comes before any effect
