"""PantherEvent and the immutable containers: the semantics rules written for Panther rely on."""

from __future__ import annotations

import json
import operator
import types
from collections.abc import Mapping, Sequence

import pytest

from onca.detections.datamodel import DataModel
from onca.detections.errors import PantherError
from onca.detections.event import PantherEvent
from onca.detections.immutable import ImmutableCaseInsensitiveDict, ImmutableList, json_encoder


def cloudtrail() -> dict:
    return {
        "eventName": "CreateUser",
        "userIdentity": {"type": "IAMUser", "userName": "bob", "sessionContext": {"mfa": "true"}},
        "resources": [{"arn": "a1"}, {"arn": "a2"}, [3]],
        "errorCode": None,
        "p_log_type": "AWS.CloudTrail",
    }


# --- key lookup -----------------------------------------------------------------------------------


def test_lookup_ignores_case_for_get_getitem_and_in():
    event = PantherEvent(cloudtrail())
    assert event.get("EVENTNAME") == "CreateUser"
    assert event["eventname"] == "CreateUser"
    assert "EventName" in event
    assert "missing" not in event


def test_exact_key_wins_over_case_insensitive_match():
    event = PantherEvent({"Key": "title", "key": "lower", "KEY": "upper"})
    assert event.get("KEY") == "upper"
    assert event.get("key") == "lower"
    assert event.get("kEy") == "title"  # no exact key: the first key in insertion order wins


def test_first_colliding_key_in_insertion_order_wins():
    assert PantherEvent({"aB": 1, "Ab": 2}).get("AB") == 1
    assert PantherEvent({"Ab": 2, "aB": 1}).get("ab") == 2


def test_missing_key_raises_key_error_and_get_returns_default():
    event = PantherEvent(cloudtrail())
    with pytest.raises(KeyError, match="Missing"):
        event["Missing"]
    assert event.get("Missing") is None
    assert event.get("Missing", "default") == "default"


def test_present_none_is_returned_instead_of_default():
    assert PantherEvent(cloudtrail()).get("errorCode", "default") is None


def test_nested_levels_are_case_insensitive_too():
    event = PantherEvent(cloudtrail())
    assert event["USERIDENTITY"]["SessionContext"]["MFA"] == "true"


def test_non_string_key_that_is_reached_raises_attribute_error():
    event = PantherEvent({"A": 1, 5: "five"})
    assert event.get("a") == 1  # found before the int key is reached
    assert event.get(5) == "five"
    with pytest.raises(AttributeError):
        event.get("b")


def test_construction_copies_the_top_level_dict():
    raw = cloudtrail()
    event = PantherEvent(raw)
    raw["eventName"] = "Changed"
    raw["added"] = 1
    assert event.get("eventName") == "CreateUser"
    assert "added" not in event


# --- nested wrapping ------------------------------------------------------------------------------


def test_nested_dicts_and_lists_are_wrapped_on_read():
    event = PantherEvent(cloudtrail())
    identity = event.get("userIdentity")
    resources = event.get("resources")
    assert type(identity) is ImmutableCaseInsensitiveDict  # not a PantherEvent: no udm()
    assert not hasattr(identity, "udm")
    assert type(resources) is ImmutableList
    assert not isinstance(identity, dict)
    assert not isinstance(resources, list)
    assert isinstance(identity, Mapping)
    assert isinstance(resources, Sequence)
    assert type(resources[0]) is ImmutableCaseInsensitiveDict
    assert type(resources[2]) is ImmutableList
    assert [type(item) for item in resources] == [ImmutableCaseInsensitiveDict] * 2 + [ImmutableList]


def test_only_exact_dict_and_list_types_are_wrapped():
    class MyDict(dict):
        pass

    event = PantherEvent({"t": (1, 2), "sub": MyDict(a=1), "s": {1, 2}})
    assert type(event["t"]) is tuple
    assert type(event["sub"]) is MyDict
    assert type(event["s"]) is set


def test_nested_containers_offer_get_deep_get_to_dict_copy_raw_view():
    identity = PantherEvent(cloudtrail())["userIdentity"]
    assert identity.get("TYPE") == "IAMUser"
    assert identity.deep_get("sessionContext", "MFA") == "true"
    assert identity.to_dict() == cloudtrail()["userIdentity"]
    assert identity.copy() == cloudtrail()["userIdentity"]
    assert identity.raw_view() == cloudtrail()["userIdentity"]


def test_dict_views_keep_original_case_and_wrap_values():
    event = PantherEvent({"A": 1, "b": {"C": 2}})
    assert list(event) == ["A", "b"]
    assert list(event.keys()) == ["A", "b"]
    assert len(event) == 2
    values = list(event.values())
    assert values[0] == 1 and type(values[1]) is ImmutableCaseInsensitiveDict
    assert [key for key, _ in event.items()] == ["A", "b"]


# --- immutability ---------------------------------------------------------------------------------


def test_item_assignment_and_deletion_raise_type_error():
    event = PantherEvent(cloudtrail())
    with pytest.raises(TypeError, match=r"^'PantherEvent' object does not support item assignment$"):
        event["eventName"] = "x"
    with pytest.raises(TypeError, match="'ImmutableCaseInsensitiveDict' object does not support item"):
        event["userIdentity"]["type"] = "x"
    with pytest.raises(TypeError, match="'ImmutableList' object does not support item assignment"):
        event["resources"][0] = "x"
    with pytest.raises(TypeError, match="does not support item deletion"):
        del event["eventName"]
    assert not hasattr(event, "__setitem__")


def test_containers_are_unhashable():
    event = PantherEvent(cloudtrail())
    for value in (event, event["userIdentity"], event["resources"]):
        with pytest.raises(TypeError, match="unhashable type"):
            hash(value)


def test_immutable_list_has_no_concatenation():
    resources = PantherEvent(cloudtrail())["resources"]
    with pytest.raises(TypeError):
        operator.add(resources, [1])
    with pytest.raises(TypeError):
        operator.add([1], resources)


# --- ImmutableList --------------------------------------------------------------------------------


def test_immutable_list_sequence_operations():
    items = ImmutableList(["a", "b", "a", [3], {"x": 1}])
    assert len(items) == 5
    assert items[0] == "a" and items[-2] == [3]
    assert items.index("b") == 1
    with pytest.raises(ValueError):
        items.index("zz")
    assert items.count("a") == 2
    assert list(reversed(ImmutableList([1, 2, 3]))) == [3, 2, 1]
    assert "a" in items and "zz" not in items
    assert {"x": 1} in items
    assert (3,) in items  # the nested list is compared as an ImmutableList, which equals a tuple
    assert bool(ImmutableList([])) is False


def test_slicing_returns_a_raw_tuple_of_raw_items():
    sliced = ImmutableList([{"a": 1}, [2], 3])[0:2]
    assert type(sliced) is tuple
    assert type(sliced[0]) is dict and type(sliced[1]) is list


def test_immutable_list_equality():
    items = ImmutableList([1, [2]])
    assert items == [1, [2]]
    assert items == (1, [2])
    assert operator.eq([1, [2]], items)  # the reflected comparison
    assert items == ImmutableList((1, [2]))
    assert items != [1, [2], 3]
    assert items != [1, (2,)]  # raw items are compared: a list never equals a tuple
    assert items != "12"
    assert items != {0: 1}


def test_as_list_and_copy_are_deep_mutable_copies():
    raw = {"l": [{"a": [1]}]}
    event = PantherEvent(raw)
    for copied in (event["l"].as_list(), event["l"].copy()):
        assert type(copied) is list and type(copied[0]) is dict
        copied[0]["a"].append(2)
    assert raw == {"l": [{"a": [1]}]}


def test_repr_shows_class_and_raw_container():
    event = PantherEvent({"a": [1], "b": {"c": 2}})
    assert repr(event) == "PantherEvent({'a': [1], 'b': {'c': 2}})"
    assert repr(event["a"]) == "ImmutableList((1,))"
    assert repr(event["b"]) == "ImmutableCaseInsensitiveDict({'c': 2})"


# --- equality, copying and JSON -------------------------------------------------------------------


def test_mapping_equality_with_plain_dicts():
    assert PantherEvent(cloudtrail()) == cloudtrail()
    assert cloudtrail() == PantherEvent(cloudtrail())
    assert PantherEvent({"a": 1}) != {"A": 1}
    assert PantherEvent({"a": [1]}) == {"a": (1,)}  # nested values compare in their wrapped form


def test_to_dict_and_copy_are_deep_mutable_copies():
    raw = cloudtrail()
    event = PantherEvent(raw)
    for copied in (event.to_dict(), event.copy()):
        assert type(copied) is dict and copied == raw
        copied["userIdentity"]["type"] = "Root"
        copied["resources"].append("x")
    assert raw == cloudtrail()
    assert event.get("userIdentity").get("type") == "IAMUser"


def test_raw_view_returns_the_wrapped_dict_without_copying():
    event = PantherEvent(cloudtrail())
    assert event.raw_view() is event.raw_view()
    assert event.raw_view() == cloudtrail()


def test_json_dumps_fails_without_encoder_and_works_with_it():
    event = PantherEvent(cloudtrail())
    with pytest.raises(TypeError, match="Object of type PantherEvent is not JSON serializable"):
        json.dumps(event)
    assert json.loads(json.dumps(event, default=PantherEvent.json_encoder)) == cloudtrail()
    mixed = {"identity": event["userIdentity"], "resources": event["resources"]}
    assert json.loads(json.dumps(mixed, default=json_encoder)) == {
        "identity": cloudtrail()["userIdentity"],
        "resources": cloudtrail()["resources"],
    }
    assert json.loads(json.dumps(event.to_dict())) == cloudtrail()


def test_json_encoder_rejects_other_objects():
    with pytest.raises(TypeError, match=r"^object of type <class 'set'> is not JSON serializable$"):
        json_encoder({1})


# --- deep_get -------------------------------------------------------------------------------------


def test_deep_get_walks_case_insensitively():
    event = PantherEvent(cloudtrail())
    assert event.deep_get("userIdentity", "type") == "IAMUser"
    assert event.deep_get("USERIDENTITY", "SESSIONCONTEXT", "Mfa") == "true"
    assert type(event.deep_get("userIdentity", "sessionContext")) is ImmutableCaseInsensitiveDict


def test_deep_get_defaults():
    event = PantherEvent(cloudtrail())
    assert event.deep_get("userIdentity", "missing") is None
    assert event.deep_get("userIdentity", "missing", default="d") == "d"
    assert event.deep_get("eventName", "below", default="d") == "d"  # a string is not a mapping
    assert event.deep_get("errorCode", default="d") == "d"  # a final None becomes the default
    assert event.deep_get() is event


def test_deep_get_does_not_index_lists():
    event = PantherEvent(cloudtrail())
    assert event.deep_get("resources", "arn", default="d") == "d"
    assert event.deep_get("resources", "0", default="d") == "d"
    assert type(event.deep_get("resources")) is ImmutableList


def test_deep_get_continues_inside_a_mapping_default():
    # panther_core reduces over get(key, default), so a dict default is walked like data.
    event = PantherEvent({})
    assert event.deep_get("a", "b", default={"b": 5}) == 5
    assert event.deep_get("a", "B", default={"b": 5}) == {"b": 5}


# --- deep_walk ------------------------------------------------------------------------------------


def walk_event() -> PantherEvent:
    return PantherEvent({
        "recs": [{"ip": "1"}, {"ip": "2"}, {"ip": "1"}, {"other": 3}, {"ip": ["5", "2"]}, [{"ip": "7"}]],
        "one": [{"ip": "9"}, {"x": 1}],
        "nest": {"inner": {"v": 0}, "l": [1, 2], "e": [], "ee": [[], [[]]]},
        "dicts": [{"d": {"k": 1}}],
    })


def test_deep_walk_flattens_lists_and_dedupes_in_order():
    event = walk_event()
    assert event.deep_walk("recs", "ip") == ["1", "2", "5", "7"]
    assert event.deep_walk("recs", "ip", return_val="first") == "1"
    assert event.deep_walk("recs", "ip", return_val="last") == "7"


def test_deep_walk_all_unwraps_a_single_value():
    assert walk_event().deep_walk("one", "ip") == "9"


def test_deep_walk_is_case_sensitive():
    event = walk_event()
    assert event.deep_walk("RECS", "ip") is None
    assert event.deep_walk("recs", "IP", default="d") == "d"


def test_deep_walk_unknown_return_val_quirk():
    event = walk_event()
    assert event.deep_walk("recs", "ip", return_val="bogus") == "all"
    # With no list on the way the leaf is returned as it is, whatever return_val says.
    assert event.deep_walk("nest", "inner", "v", return_val="bogus") == 0


def test_deep_walk_empty_lists_count_as_not_found():
    event = walk_event()
    assert event.deep_walk("nest", "e", default="d") == "d"
    assert event.deep_walk("nest", "ee", default="d") == "d"
    assert event.deep_walk("nest", "missing", default="d") == "d"


def test_deep_walk_returns_raw_mutable_containers():
    event = walk_event()
    assert type(event.deep_walk("nest", "l")) is list
    assert type(event.deep_walk("nest", "inner")) is dict
    assert event.deep_walk("dicts", "d", "k") == 1


def test_deep_walk_unhashable_leaves_under_a_list_raise():
    with pytest.raises(TypeError, match="unhashable"):
        walk_event().deep_walk("dicts", "d")


def test_deep_walk_non_none_default_is_collected_for_missing_list_items():
    assert walk_event().deep_walk("one", "ip", default="d") == ["9", "d"]


# --- udm ------------------------------------------------------------------------------------------


def udm_model() -> DataModel:
    def get_actor(event):
        return ("view", type(event).__name__, event.get("USERIDENTITY").get("username"))

    def get_none(event):
        return None

    def get_list(event):
        return [1, {"a": 2}]

    module = types.ModuleType("Test.UDM")
    module.__dict__.update(get_actor=get_actor, get_none=get_none, get_list=get_list)
    return DataModel({
        "DataModelID": "Test.UDM",
        "LogTypes": ["AWS.CloudTrail"],
        "Enabled": True,
        "Mappings": [
            {"Name": "user_type", "Path": "$.userIdentity.type"},
            {"Name": "identity", "Path": "userIdentity"},
            {"Name": "error", "Path": "$.errorCode"},
            {"Name": "source_ip", "Path": "$.sourceIPAddress"},
            {"Name": "arns", "Path": "$.resources[*].arn"},
            {"Name": "actor", "Method": "get_actor"},
            {"Name": "nothing", "Method": "get_none"},
            {"Name": "listing", "Method": "get_list"},
        ],
    }, module)


def test_udm_path_mapping_reads_the_raw_event():
    event = PantherEvent(cloudtrail(), udm_model())
    assert event.udm("user_type") == "IAMUser"
    assert type(event.udm("identity")) is ImmutableCaseInsensitiveDict


def test_udm_path_present_but_null_is_none_not_default():
    assert PantherEvent(cloudtrail(), udm_model()).udm("error", default="d") is None


def test_udm_path_without_match_returns_default_without_fallback():
    fallbacks = {"p_udm": {"source_ip": "9.9.9.9"}, "source_ip": "8.8.8.8"}
    event = PantherEvent(cloudtrail() | fallbacks, udm_model())
    assert event.udm("source_ip") is None
    assert event.udm("source_ip", default="d") == "d"


def test_udm_path_is_case_sensitive():
    event = PantherEvent({"useridentity": {"type": "IAMUser"}}, udm_model())
    assert event.udm("user_type", default="d") == "d"


def test_udm_path_matching_several_fields_raises():
    with pytest.raises(Exception, match=r"in DataModel \[Test.UDM\], matched multiple fields\."):
        PantherEvent(cloudtrail(), udm_model()).udm("arns")


def test_udm_method_receives_a_plain_case_insensitive_view():
    assert PantherEvent(cloudtrail(), udm_model()).udm("actor") == ImmutableList(
        ["view", "ImmutableCaseInsensitiveDict", "bob"]
    )


def test_udm_method_result_is_wrapped_and_none_is_returned_as_is():
    event = PantherEvent(cloudtrail() | {"nothing": "top"}, udm_model())
    assert event.udm("nothing", default="d") is None
    listing = event.udm("listing")
    assert type(listing) is ImmutableList and type(listing[1]) is ImmutableCaseInsensitiveDict


def test_udm_names_are_case_sensitive_and_unmapped_names_fall_back():
    event = PantherEvent(cloudtrail() | {"p_udm": {"User_Type": "from p_udm"}}, udm_model())
    assert event.udm("User_Type") == "from p_udm"


def test_udm_falls_back_to_p_udm_then_top_level():
    event = PantherEvent({"p_udm": {"user": "pu", "src": {"ip": "1.1.1.1"}}, "user": "top", "other": "o"})
    assert event.udm("user") == "pu"
    assert event.udm("other") == "o"
    assert event.udm("src", "ip") == "1.1.1.1"
    assert event.udm("missing", default="d") == "d"
    assert event.udm(default="d") == "d"


def test_udm_treats_falsy_values_as_missing():
    event = PantherEvent({"p_udm": {"zero": 0, "empty": ""}, "empty": "top", "false": False})
    assert event.udm("zero", default="d") == "d"
    assert event.udm("empty") == "top"
    assert event.udm("false", default="d") == "d"


def test_udm_with_several_keys_skips_the_data_model():
    event = PantherEvent(cloudtrail(), udm_model())
    assert event.udm("userIdentity", "type") == "IAMUser"


# --- udm_path, lookup, event_time_epoch -----------------------------------------------------------


def test_udm_path_names_the_matched_path_or_method():
    event = PantherEvent(cloudtrail(), udm_model())
    assert event.udm_path("user_type") == "userIdentity.type"
    assert event.udm_path("identity") == "userIdentity"
    assert event.udm_path("actor") == "get_actor"
    assert event.udm_path("source_ip") is None  # mapped, but nothing matched
    assert event.udm_path("unmapped") is None


def test_udm_path_without_data_model_raises_panther_error():
    message = r"^a data model hasn't been specified for log type: AWS\.CloudTrail$"
    with pytest.raises(PantherError, match=message):
        PantherEvent(cloudtrail()).udm_path("source_ip")


def test_lookup_reads_mocked_data_or_calls_the_lookup_function():
    event = PantherEvent({"_mocked_lookup_data_": {"table": {"key": {"v": 1}}}})
    assert event.lookup("table", "key") == {"v": 1}
    assert event.lookup("table", "missing") is None
    event.lookup_function = lambda evt, table, key: (table, key)
    assert event.lookup("t", "k") == ("t", "k")


@pytest.mark.parametrize(("event_time", "expected"), [
    ("2023-01-02 03:04:05.123", 1672628645),
    ("2023-01-02T03:04:05", 1672628645),
    ("not a time", 0),
    (None, 0),
])
def test_event_time_epoch(event_time, expected):
    assert PantherEvent({"p_event_time": event_time}).event_time_epoch() == expected


def test_event_time_epoch_missing_field_is_zero():
    assert PantherEvent({}).event_time_epoch() == 0
    assert PantherEvent({}).event_time_epoch(force_utc=False) == 0


def test_event_time_epoch_can_keep_an_explicit_offset():
    event = PantherEvent({"p_event_time": "2023-01-02T04:04:05+01:00"})
    assert event.event_time_epoch(force_utc=False) == 1672628645
