"""Fast checks of the benchmark script's parsing and reporting (no model is run, nothing timed)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "compare_recbole.py"


@pytest.fixture(scope="module")
def cr():
    spec = importlib.util.spec_from_file_location("compare_recbole", _PATH)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["compare_recbole"] = mod
    spec.loader.exec_module(mod)
    yield mod
    sys.modules.pop("compare_recbole", None)


GNU_TIME = """\
\tCommand being timed: "python x.py"
\tUser time (seconds): 30.12
\tElapsed (wall clock) time (h:mm:ss or m:ss): 1:02.50
\tMaximum resident set size (kbytes): 471800
\tExit status: 0
"""


def test_parse_gnu_time(cr):
    m = cr._parse_gnu_time(GNU_TIME)
    assert m == {"timer": "gnu-time", "wall_s": 62.5, "max_rss_kib": 471800, "exit_code": 0}
    assert (
        cr._parse_gnu_time("\tElapsed (wall clock) time (h:mm:ss or m:ss): 1:00:01\n")["wall_s"]
        == 3601.0
    )


def test_parse_models(cr):
    assert [r.key for r in cr.parse_models("ease, pop,ease")] == ["ease", "pop"]
    assert len(cr.parse_models("all")) == len(cr.MODELS)
    with pytest.raises(cr.BenchError, match="unknown model.*'eaze'"):
        cr.parse_models("pop,eaze")
    sasrec = cr.parse_models("sasrec")[0]
    assert sasrec.protocol == "loo" and sasrec.recbole == "SASRec"
    assert cr.parse_models("cke")[0].kg_only


def test_store_key_and_roundtrip(cr, tmp_path):
    row = cr.parse_models("bpr")[0]
    key = cr.store_key(row)
    assert key == "BPR|rs|recbole==1.2.1"
    assert cr.store_key(cr.parse_models("cke")[0]) == "CKE|rs|kg-only|recbole==1.2.1"
    path = tmp_path / "store.json"
    assert cr.load_store(path) == {}
    cr.save_store_entry(key, {"status": "ok", "ndcg@10": 0.29}, path)
    cr.save_store_entry("EASE|rs|recbole==1.2.1", {"status": "ok"}, path)
    assert cr.load_store(path) == {
        key: {"status": "ok", "ndcg@10": 0.29},
        "EASE|rs|recbole==1.2.1": {"status": "ok"},
    }
    path.write_text("{not json")
    with pytest.raises(cr.BenchError, match="not valid JSON"):
        cr.load_store(path)


def test_fit_ratio_and_table(cr):
    fr = {
        "status": "ok",
        "ndcg@10": 0.3291,
        "recall@10": 0.27,
        "mrr@10": 0.53,
        "hit@10": 0.81,
        "fit_s": 2.0,
        "peak_rss_mib": 456.0,
    }
    rb = dict(fr, fit_s=8.0)
    assert cr.fit_ratio(fr, rb) == 0.25
    assert cr.fit_ratio(fr, {"status": "skipped"}) is None
    entries = [
        {"model": "ease", "note": "", "fusionrec": fr, "recbole": rb, "fit_ratio": 0.25},
        {
            "model": "neumf",
            "note": "",
            "fusionrec": {"status": "not available", "reason": "unknown model"},
            "recbole": {"status": "skipped"},
            "fit_ratio": None,
        },
    ]
    text = cr.format_table(entries)
    lines = text.splitlines()
    assert lines[0].split()[:2] == ["model", "fr"]
    assert "0.3291" in lines[2] and "0.25" in lines[2] and "8.0" in lines[2]
    assert "not available" in lines[3]
    assert "neumf (fusionrec): not available: unknown model" in text
    json.dumps(entries)  # the report stays JSON-serialisable


def test_epoch_notes(cr):
    fr = {
        "status": "ok",
        "ndcg@10": 0.31,
        "fit_s": 7.0,
        "fit_cpu_s": 6.2,
        "epochs_run": 15,
        "epoch_s_mean": 0.41,
        "best_epoch": 14,
    }
    entries = [
        {
            "model": "lightgcn",
            "note": "",
            "fusionrec": fr,
            "recbole": {"status": "skipped"},
            "fit_ratio": None,
        }
    ]
    text = cr.format_table(entries)
    assert "lightgcn (fusionrec): 15 epochs, 0.41 s/epoch, best epoch 14; fit CPU 6.2 s" in text
