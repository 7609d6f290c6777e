"""End-to-end CLI tests on a small saved dataset (no network)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from fusionrec.cli.main import main


def test_quickstart_export_and_followups(small_dataset: Path, tmp_path: Path, capsys):
    out, exp = tmp_path / "run", tmp_path / "exp"
    rc = main(
        [
            "quickstart",
            "--dataset",
            str(small_dataset),
            "--models",
            "pop,ease",
            "--output",
            str(out),
            "--export-dir",
            str(exp),
        ]
    )
    assert rc == 0
    board = json.loads((out / "leaderboard.json").read_text())
    assert [m["model"] for m in board["models"]] == ["pop", "ease"]
    assert (out / "leaderboard.md").read_text().count("| ease |") == 1
    for part in ("train", "valid", "test"):
        df = pd.read_csv(exp / "splits" / f"{part}.csv", dtype={"user_id": str, "item_id": str})
        assert list(df.columns) == ["user_id", "item_id", "rating", "timestamp"]
    train = pd.read_csv(exp / "splits" / "train.csv", dtype=str)
    valid = pd.read_csv(exp / "splits" / "valid.csv", dtype=str)
    test = pd.read_csv(exp / "splits" / "test.csv", dtype=str)
    assert len(train) + len(valid) + len(test) == 320
    recs = pd.read_csv(exp / "ease" / "recommendations.csv", dtype={"user_id": str, "item_id": str})
    assert list(recs.columns) == ["user_id", "item_id", "rank", "score"]
    # recompute NDCG@10 from the exported files alone and compare with the leaderboard
    seen = set(zip(train.user_id, train.item_id, strict=True)) | set(zip(valid.user_id, valid.item_id, strict=True))
    assert not any((u, i) in seen for u, i in zip(recs.user_id, recs.item_id, strict=True))
    truth = test.groupby("user_id")["item_id"].apply(set)
    ndcgs = []
    for u, grp in recs.groupby("user_id"):
        g = grp.sort_values("rank")
        dcg = sum(1 / np.log2(r + 1) for r, i in zip(g["rank"], g["item_id"], strict=True) if i in truth[u])
        idcg = sum(1 / np.log2(r + 1) for r in range(1, min(len(truth[u]), 10) + 1))
        ndcgs.append(dcg / idcg)
    ease_row = next(m for m in board["models"] if m["model"] == "ease")
    assert np.isclose(np.mean(ndcgs), ease_row["metrics"]["ndcg@10"], atol=1e-6)

    capsys.readouterr()
    assert main(["evaluate", "--model-dir", str(out / "models" / "ease"), "--json"]) == 0
    ev = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert np.isclose(ev["metrics"]["ndcg@10"], ease_row["metrics"]["ndcg@10"])

    assert (
        main(
            [
                "recommend",
                "--model-dir",
                str(out / "models" / "ease"),
                "--user",
                "u0",
                "-k",
                "3",
                "--csv",
            ]
        )
        == 0
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "user_id,item_id,rank,score,fallback,title" and len(lines) == 4
    assert all(",Film " in ln for ln in lines[1:])


def test_train_with_config(small_dataset: Path, tmp_path: Path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"data: {{name: '{small_dataset}'}}\nmodel: {{name: ease, params: {{reg_weight: 5.0}}}}\neval: {{ks: [5, 10]}}\n"
    )
    out = tmp_path / "run"
    assert main(["train", "--config", str(cfg), "--output", str(out)]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert set(m["metrics"]) >= {"ndcg@5", "ndcg@10", "recall@5"}
    assert (out / "models" / "ease" / "config.json").exists()


def test_user_errors_print_one_line_and_exit_nonzero(tmp_path: Path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model: {name: ease, params: {reg_wieght: 5.0}}\n")
    assert main(["train", "--config", str(cfg)]) == 1
    err = capsys.readouterr().err
    assert "reg_wieght" in err and "Traceback" not in err
    assert main(["quickstart", "--models", "nosuchmodel", "--output", str(tmp_path / "x")]) == 1
    assert "unknown model 'nosuchmodel'" in capsys.readouterr().err
    assert main(["evaluate", "--model-dir", str(tmp_path)]) == 1
    assert "not a saved fusionrec model" in capsys.readouterr().err


def test_data_info_and_models(small_dataset: Path, capsys):
    assert main(["data", "info", str(small_dataset), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["users"] == 40 and info["items"] == 30 and info["interactions"] == 320
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "ease" in out and "pop" in out
