"""The content YAML dialect: YAML 1.2 meanings on PyYAML's fast loader."""

from __future__ import annotations

import pytest
import yaml

from onca.detections.yaml_dialect import load_yaml


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-01 00:00:00", "2024-01-01 00:00:00"),
        ("2024-06-01T10:00:00Z", "2024-06-01T10:00:00Z"),
        ("2024-06-01", "2024-06-01"),
        ("yes", "yes"),
        ("No", "No"),
        ("on", "on"),
        ("OFF", "OFF"),
        ("true", True),
        ("False", False),
        ("TRUE", True),
        ("0644", 644),
        ("-017", -17),
        ("0x1F", 31),
        ("0b101", 5),
        ("1_000", 1000),
        ("1:30:00", "1:30:00"),
        ("089", "089"),
        ("1.5", 1.5),
        ("null", None),
        ("~", None),
    ],
)
def test_scalars(text: str, expected: object) -> None:
    value = load_yaml(f"v: {text}")["v"]
    assert value == expected
    assert type(value) is type(expected)


def test_duplicate_keys_last_wins_and_quoted_values_stay_strings() -> None:
    assert load_yaml("a: 1\na: 2\nb: '0644'\nc: 'true'") == {"a": 2, "b": "0644", "c": "true"}


def test_malformed_yaml_raises_a_yaml_error_with_position() -> None:
    with pytest.raises(yaml.YAMLError) as err:
        load_yaml("a: [unclosed\nb: 1\n")
    assert "line" in str(err.value)
