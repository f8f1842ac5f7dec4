import dataclasses

import pytest

from etlc.dsl.diagnostics import Span
from etlc.dsl.parse import parse_text
from etlc.dsl.tree import JArray, JMember, JObject, JScalar, JValue, key_span, locate, to_python

DOC = """{
  "name": "orders",
  "extract": [
    {"id": "raw", "n": 12.5e1, "ok": true, "none": null},
    [1, -2, 0.5]
  ]
}"""


def tree(text: str = DOC) -> JValue:
    root, diagnostics = parse_text(text, "p.json", "json")
    assert diagnostics == []
    assert root is not None
    return root


def at(line: int, col: int, end_line: int, end_col: int) -> Span:
    return Span("p.json", line, col, end_line, end_col)


def test_object_accessors() -> None:
    root = tree()
    assert isinstance(root, JObject)
    assert root.keys() == ("name", "extract")
    name = root.member("name")
    assert name is not None
    assert name.key_span == at(2, 3, 2, 9)
    assert root.get("name") == JScalar(at(2, 11, 2, 19), "orders")
    assert root.get("missing") is None
    assert root.member("missing") is None


def test_nested_positions() -> None:
    root = tree()
    assert root.span == at(1, 1, 7, 2)
    extract = locate(root, ["extract"])
    assert isinstance(extract, JArray)
    assert extract.span == at(3, 14, 6, 4)
    first = locate(root, ["extract", 0])
    assert first is not None
    assert first.span == at(4, 5, 4, 57)
    assert locate(root, ["extract", 0, "n"]) == JScalar(at(4, 24, 4, 30), 125.0)
    assert locate(root, ["extract", 0, "ok"]) == JScalar(at(4, 38, 4, 42), True)
    assert locate(root, ["extract", 0, "none"]) == JScalar(at(4, 52, 4, 56), None)
    assert locate(root, ["extract", 1, 1]) == JScalar(at(5, 9, 5, 11), -2)
    assert locate(root, []) is root


@pytest.mark.parametrize(
    "path",
    [
        ["nope"],
        ["extract", 2],
        ["extract", -1],
        ["extract", "0"],  # an object key on an array
        ["name", 0],  # an index on a scalar
        [0],  # an index on an object
        ["extract", 0, "id", "deeper"],
    ],
)
def test_locate_misses(path: list[str | int]) -> None:
    assert locate(tree(), path) is None


def test_key_span() -> None:
    root = tree()
    assert key_span(root, ["extract", 0], "ok") == at(4, 32, 4, 36)
    assert key_span(root, [], "extract") == at(3, 3, 3, 12)
    assert key_span(root, ["extract", 0], "missing") is None
    assert key_span(root, ["extract"], "id") is None  # not an object
    assert key_span(root, ["nope"], "id") is None


def test_to_python_keeps_order_and_types() -> None:
    value = to_python(tree('{"b": [1, 2.5, "x"], "a": {"z": null, "y": false}}'))
    assert value == {"b": [1, 2.5, "x"], "a": {"z": None, "y": False}}
    assert list(value) == ["b", "a"]
    assert list(value["a"]) == ["z", "y"]
    assert isinstance(value["b"][0], int)
    assert to_python(tree("3")) == 3


def test_nodes_are_frozen_values() -> None:
    span = Span.point("f")
    scalar = JScalar(span, 1)
    obj = JObject(span, (JMember("k", span, scalar),))
    with pytest.raises(dataclasses.FrozenInstanceError):
        scalar.value = 2  # type: ignore[misc]
    assert obj == JObject(span, (JMember("k", span, JScalar(span, 1)),))
    assert to_python(JArray(span, (obj, scalar))) == [{"k": 1}, 1]
