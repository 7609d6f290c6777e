"""``fusionrec evaluate --metrics/--rerank`` and ``fusionrec explain`` on a saved model folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fusionrec.cli.main import main
from fusionrec.data import Dataset


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    from fusionrec.experiment import experiment_record, prepare_data
    from fusionrec.experiment.config import DataConfig, EvalConfig
    from fusionrec.models.registry import get_model

    rng = np.random.default_rng(0)
    rows = [(f"u{u}", f"i{i}") for u in range(60) for i in rng.choice(np.arange(20) + 10 * (u % 2), 8, replace=False)]
    items = pd.DataFrame({"item_id": [f"i{i}" for i in range(30)], "title": [f"Film {i}" for i in range(30)],
                          "genres": [[f"G{i % 6}"] for i in range(30)]})
    users = pd.DataFrame({"user_id": [f"u{u}" for u in range(60)], "gender": ["F", "M", "M"] * 20})
    path = tmp_path / "ds"
    Dataset.from_frames(pd.DataFrame(rows, columns=["user_id", "item_id"]), users, items,
                        item_feature_types={"genres": "token_seq"}, name="toy").save(path)
    data = DataConfig(name=str(path))
    _, sp = prepare_data(data, 2020)
    out = tmp_path / "ease"
    get_model("ease")().fit(sp.train).save(out)
    (out / "experiment.json").write_text(json.dumps(experiment_record(data, 2020, EvalConfig())))
    return out


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_evaluate_metrics_and_rerank(model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["evaluate", "--model-dir", str(model_dir), "--json", "--metrics", "ndcg,coverage,ild,exposure,ndcg_gap"]
    plain = _json(capsys, base)
    m = plain["metrics"]
    assert {"ndcg@10", "itemcoverage@10", "ild@10", "exposure@10:tail", "ndcg_gap@10:gender"} <= set(m)
    mmr = _json(capsys, [*base, "--rerank", "mmr:0.9"])
    assert mmr["rerank"] == "mmr:0.9"
    assert mmr["metrics"]["ild@10"] > m["ild@10"]  # diversity re-ranking raises intra-list diversity
    fair = _json(capsys, [*base, "--rerank", "fair:0.9"])
    assert fair["metrics"]["exposure@10:tail"] >= m["exposure@10:tail"]


def test_evaluate_rejects_bad_names(model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "--model-dir", str(model_dir), "--metrics", "ndcg,bogus"]) == 1
    assert "bogus" in capsys.readouterr().err
    assert main(["evaluate", "--model-dir", str(model_dir), "--rerank", "mmr:7"]) == 1
    assert "[0, 1]" in capsys.readouterr().err


def test_explain_command(model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = _json(capsys, ["explain", "--model-dir", str(model_dir), "--user", "u0", "--item", "i3", "--json", "--top", "3"])
    assert out["user_id"] == "u0" and out["item"]["item_id"] == "i3"
    assert out["contributions"]["method"] == "leave_one_out" and len(out["contributions"]["items"]) == 3
    assert main(["explain", "--model-dir", str(model_dir), "--user", "u0"]) == 0  # table output, default item
    assert "contributions" in capsys.readouterr().out
    assert main(["explain", "--model-dir", str(model_dir), "--user", "nobody"]) == 1


def test_experiment_config_applies_the_reranker(model_dir: Path) -> None:
    from fusionrec.experiment import run
    from fusionrec.experiment.config import config_from_dict

    rec = json.loads((model_dir / "experiment.json").read_text())
    base = {"data": rec["data"], "model": {"name": "ease"}, "eval": {"metrics": ["ndcg", "exposure"]}}
    plain = run(config_from_dict(base)).metrics
    fair = run(config_from_dict({**base, "eval": {**base["eval"], "rerank": "fair:1.0"}})).metrics
    # p = 1: every prefix must be long-tail items, so head items vanish from the lists
    assert fair["exposure@10:tail"] > plain["exposure@10:tail"]
    assert fair["exposure@10:head"] == pytest.approx(0.0)
