"""Parameter resolution across deploys and the onca.yml file."""

from __future__ import annotations

from pathlib import Path

import pytest

from onca.deploy.parameters import PARAMETERS, ParameterError, display, parse_overrides, read_config, resolve

ADMIN = {"FirstUserEmail": "admin@example.com"}


def test_defaults_fill_a_first_deploy() -> None:
    values, warnings = resolve(ADMIN, None)
    assert values["OnboardSelf"] is True and values["WebListenAddress"] == "127.0.0.1:8000"
    assert set(values) == {p.name for p in PARAMETERS} and warnings == []


def test_previous_values_are_reused_and_defaults_only_apply_to_new_keys() -> None:
    previous, _ = resolve({**ADMIN, "OnboardSelf": "false", "CustomDomain": "siem.example.com"}, None)
    del previous["SmtpFrom"]  # a key this release added: it takes its default
    previous["WebListenAddress"] = "127.0.0.1:9999"  # an earlier value, not the default: kept
    values, _ = resolve({}, previous)
    assert values["OnboardSelf"] is False and values["CustomDomain"] == "siem.example.com"
    assert values["SmtpFrom"] == "onca@localhost" and values["WebListenAddress"] == "127.0.0.1:9999"


def test_every_problem_is_reported_with_its_parameter() -> None:
    with pytest.raises(ParameterError) as err:
        resolve({"FirstUserEmail": "nope", "OnboardSelf": "maybe", "WebListenAddress": "localhost",
                 "firstuseremail": "x@example.com", "WebCertificateFile": "/tmp/cert.pem"}, None)
    problems = err.value.problems
    assert "not an email address" in problems["FirstUserEmail"]
    assert "expected true or false" in problems["OnboardSelf"]
    assert "HOST:PORT" in problems["WebListenAddress"]
    assert "did you mean FirstUserEmail" in problems["firstuseremail"]
    assert "go together" in problems["WebCertificateKeyFile"]


def test_first_user_email_is_required_and_fixed_after_the_first_deploy() -> None:
    with pytest.raises(ParameterError, match="FirstUserEmail: is required"):
        resolve({}, None)
    previous, _ = resolve(ADMIN, None)
    values, warnings = resolve({"FirstUserEmail": "new@example.com"}, previous)
    assert values["FirstUserEmail"] == "admin@example.com" and "ignored" in warnings[0]


def test_lists_and_overrides() -> None:
    values, _ = resolve({**ADMIN, "PipLibraries": "requests==2.31.0, ipwhois"}, None)
    assert values["PipLibraries"] == ["requests==2.31.0", "ipwhois"]
    assert parse_overrides(["A=1", "B=x=y"]) == {"A": "1", "B": "x=y"}
    with pytest.raises(ParameterError, match="Key=Value"):
        parse_overrides(["novalue"])
    assert display("SmtpUrl", "smtp://u:p@h") == "********" and display("PipLibraries", ["a", "b"]) == "a,b"


def test_onca_yml(tmp_path: Path) -> None:
    (tmp_path / "onca.yml").write_text("stack_name: onca-prod\nparameters:\n  FirstUserEmail: a@example.com\n")
    config = read_config(tmp_path)
    assert config.stack_name == "onca-prod" and config.parameters == {"FirstUserEmail": "a@example.com"}
    (tmp_path / "onca.yml").write_text("stack: x\n")
    with pytest.raises(ParameterError, match="unknown keys"):
        read_config(tmp_path)
    (tmp_path / "onca.yml").write_text("parameters: [1\n")
    with pytest.raises(ParameterError, match="not valid YAML"):
        read_config(tmp_path)
