"""Data models: mapping parsing, errors, and JSONPath evaluation (fast dotted path vs jsonpath_ng)."""

from __future__ import annotations

import types

import pytest
from jsonpath_ng.ext import parse

from onca.detections.datamodel import DataModel, PathMapping
from onca.detections.errors import ContentError
from onca.detections.immutable import MISSING


def _module(**functions: object) -> types.ModuleType:
    module = types.ModuleType("Test.DataModel")
    module.__dict__.update(functions)
    return module


def _spec(*mappings: dict) -> dict:
    return {
        "AnalysisType": "datamodel",
        "DataModelID": "Test.DataModel",
        "LogTypes": ["Custom.Test", "Custom.Other"],
        "Enabled": True,
        "Filename": "test_data_model.py",
        "Mappings": list(mappings),
    }


def get_user(event):
    return event.get("user")


def test_exposes_id_log_types_and_mappings_by_name():
    model = DataModel(_spec({"Name": "source_ip", "Path": "$.ip"}, {"Name": "actor", "Method": "get_user"}),
                      _module(get_user=get_user))
    assert model.data_model_id == "Test.DataModel"
    assert model.log_types == ["Custom.Test", "Custom.Other"]
    assert model.enabled is True
    assert set(model.paths) == {"source_ip"}
    assert model.methods == {"actor": get_user}


def test_mapping_keys_are_case_insensitive_but_names_keep_their_case():
    model = DataModel(_spec({"NAME": "Source_IP", "path": "$.ip"}, {"name": "actor", "METHOD": "get_user"}),
                      _module(get_user=get_user))
    assert set(model.paths) == {"Source_IP"}
    assert set(model.methods) == {"actor"}


def test_method_missing_from_module_is_a_content_error():
    with pytest.raises(ContentError, match=r"^DataModel is missing method named \[nope\]$"):
        DataModel(_spec({"Name": "actor", "Method": "nope"}), _module(get_user=get_user))


def test_method_without_a_module_is_a_content_error():
    with pytest.raises(ContentError, match=r"missing method named \[get_user\]"):
        DataModel(_spec({"Name": "actor", "Method": "get_user"}))


def test_mapping_with_neither_path_nor_method_is_a_content_error():
    message = r"^DataModel \[Test.DataModel\] is missing a field or method for \[x\]$"
    with pytest.raises(ContentError, match=message):
        DataModel(_spec({"Name": "x"}))


def test_empty_path_falls_through_to_method():
    model = DataModel(_spec({"Name": "actor", "Path": "", "Method": "get_user"}), _module(get_user=get_user))
    assert "actor" not in model.paths
    assert model.methods["actor"] is get_user


def test_mapping_without_name_is_a_content_error():
    with pytest.raises(ContentError, match=r"missing required field: \[name\]"):
        DataModel(_spec({"Path": "$.ip"}))


def test_equal_path_strings_are_compiled_once():
    assert PathMapping("$.a.b").expr is PathMapping("$.a.b").expr


DOTTED_PATHS = ["$.a", "a", "$.a.b", "a.b", "$.a.b.c", "a.b.c", "$.n", "$.n.x", "$.l.x", "$.s.x"]


@pytest.mark.parametrize("path", DOTTED_PATHS)
def test_dotted_paths_take_the_fast_path_and_agree_with_jsonpath_ng(path):
    events = [
        {"a": {"b": {"c": 1}}, "n": None, "l": [{"x": 1}], "s": "text"},
        {"a": {"b": None}},
        {"a": {"B": {"c": 2}}},
        {"a": "not a dict"},
        {},
    ]
    mapping = PathMapping(path)
    assert mapping.fields is not None
    for raw in events:
        matches = parse(path).find(raw)
        value, full_path = mapping.find(raw, "Test.DataModel")
        if matches:
            assert value == matches[0].value
            assert full_path == path.removeprefix("$.")
        else:
            assert value is MISSING
            assert full_path is None


def test_present_null_field_matches_with_value_none():
    value, full_path = PathMapping("$.userIdentity.arn").find({"userIdentity": {"arn": None}}, "DM")
    assert value is None
    assert full_path == "userIdentity.arn"


def test_paths_are_case_sensitive():
    assert PathMapping("$.userIdentity.arn").find({"useridentity": {"arn": "x"}}, "DM") == (MISSING, None)


@pytest.mark.parametrize("path", ["$.l[*].x", "$.a.*", "$..x", "$.l[0].x"])
def test_non_dotted_paths_use_jsonpath_ng(path):
    assert PathMapping(path).fields is None


def test_single_match_of_a_wildcard_path_is_returned():
    assert PathMapping("$.l[*].x").find({"l": [{"x": 7}, {"y": 1}]}, "DM")[0] == 7


def test_multiple_matches_raise_naming_path_and_data_model():
    message = r"^JSONPath \[.*\] in DataModel \[Test.DM\], matched multiple fields\.$"
    with pytest.raises(Exception, match=message):
        PathMapping("$.l[*].x").find({"l": [{"x": 1}, {"x": 2}]}, "Test.DM")
