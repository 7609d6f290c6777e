"""Fast checks of the joint ablation's choice and reporting (no model is run)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_DIR = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def ja():
    sys.path.insert(0, str(_DIR))
    spec = importlib.util.spec_from_file_location("joint_ablation", _DIR / "joint_ablation.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    yield mod
    sys.path.remove(str(_DIR))
    sys.modules.pop("_joint_data", None)


def _r(valid: float, test: float) -> dict:
    return {"valid_ndcg@10": valid, "ndcg@10": test}


def test_choose_takes_best_valid_first_on_tie(ja):
    assert ja.choose([(0.20, {}), (0.25, {"a": 1}), (0.25, {"b": 2})]) == 1
    with pytest.raises(ValueError, match="grid is empty"):
        ja.choose([])


def test_rows_cover_single_sources_and_leave_one_out(ja):
    assert ja.ROWS["id"] == [] and ja.ROWS["kg"] == ["kg"]
    assert ja.ROWS["-text"] == ["user", "kg"] and ja.ROWS["-kg"] == ["user", "text"]


def test_table_and_verdict_known_answer(ja):
    out = {
        "joint": {"1": _r(0.25, 0.30), "2": _r(0.24, 0.28)},
        "id": {"1": _r(0.24, 0.29), "2": _r(0.23, 0.27)},
        "kg": {"1": _r(0.26, 0.31), "2": _r(0.22, 0.26)},
        "-kg": {"1": _r(0.2, 0.2)},  # missing a seed: left out of the table
    }
    lines = ja.table(out, [1, 2])
    assert lines[2] == "| joint | 0.2500 / 0.3000 | 0.2400 / 0.2800 | 0.2900 |"
    assert len(lines) == 5
    v = ja.verdict(out, [1, 2])
    assert v[0] == "seed 1: joint 0.3000 vs best single-source kg 0.3100 (-0.0100)"
    assert v[1] == "seed 2: joint 0.2800 vs best single-source id 0.2700 (+0.0100)"
    assert v[2] == "mean: joint 0.2900 vs best single-source kg 0.2850 (+0.0050)"  # kg: (.31 + .26) / 2
