"""Method specs: every method parses; bad methods and ratios give errors naming the problem."""

from __future__ import annotations

import pytest

from fusionrec.compress import CompressionSpec, parse_method
from fusionrec.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "kind", "ratio"),
    [
        ("int8", "int8", None),
        ("FP16", "fp16", None),
        (" bf16 ", "bf16", None),
        ("onnx", "onnx", None),
        ("prune:0.5", "prune", 0.5),
        ("prune-structured:0.25", "prune-structured", 0.25),
        ("prune:1e-3", "prune", 0.001),
    ],
)
def test_methods_parse(text: str, kind: str, ratio: float | None) -> None:
    spec = parse_method(text)
    assert spec == CompressionSpec(kind, ratio)  # type: ignore[arg-type]
    assert parse_method(str(spec)) == spec  # the printed form parses back


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("int4", "unknown compression method 'int4'"),
        ("", "non-empty"),
        ("prune", "needs a ratio"),
        ("prune:", "needs a ratio"),
        ("prune:0", "strictly between 0 and 1"),
        ("prune:1", "strictly between 0 and 1"),
        ("prune:-0.2", "strictly between 0 and 1"),
        ("prune-structured:1.5", "strictly between 0 and 1"),
        ("prune:nan", "strictly between 0 and 1"),
        ("prune:half", "is not a number"),
        ("int8:0.5", "takes no ratio"),
    ],
)
def test_bad_methods_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_method(text)
