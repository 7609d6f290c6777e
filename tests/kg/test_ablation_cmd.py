"""The ablation report on a toy dataset (fast settings) and the CLI wiring."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fusionrec.errors import ConfigError
from fusionrec.experiment.ablation import run_ablation, write_ablation_report
from fusionrec.testing import toy_dataset

FAST = {"embedding_dim": 8, "batch_size": 128, "device": "cpu"}


def test_run_ablation_writes_table_json_and_chart(tmp_path):
    ds = toy_dataset()
    text = np.random.default_rng(0).normal(size=(ds.n_items, 6)).astype(np.float32)
    params = {
        v: FAST | ({"rel_dim": 4} if "kg" in v else {}) for v in ("id", "text", "kg", "text+kg")
    }
    rep = run_ablation(ds, epochs=2, patience=0, params=params, text=text, log=lambda s: None)
    assert [r["variant"] for r in rep["rows"]] == ["id", "text", "kg", "text+kg"]
    for r in rep["rows"]:
        assert 0.0 <= r["ndcg@10"] <= 1.0 and r["fit_seconds"] > 0 and "sparse_ndcg@10" in r
    paths = write_ablation_report(rep, tmp_path)
    assert all(p.exists() for p in paths)
    assert json.loads((tmp_path / "ablation.json").read_text())["rows"][2]["model"] == "cke"
    assert "| text+kg | cke |" in (tmp_path / "ablation.md").read_text()
    assert (tmp_path / "ablation.png").read_bytes()[:4] == b"\x89PNG"


def test_run_ablation_skips_text_without_encoder_and_rejects_unknown(monkeypatch):
    import fusionrec.experiment.ablation as kc

    monkeypatch.setattr(kc, "_text_embeddings", lambda ds: (None, "no encoder"))
    rep = run_ablation(
        toy_dataset(), ["id", "text"], epochs=1, patience=0, params={"id": FAST}, log=lambda s: None
    )
    assert [r["variant"] for r in rep["rows"]] == ["id"] and "no encoder" in rep["notes"][0]
    with pytest.raises(ConfigError, match="unknown ablation variant"):
        run_ablation(toy_dataset(), ["id", "image"])


def test_cli_registers_ablation_and_kge():
    from typer.testing import CliRunner

    from fusionrec.cli.main import app

    out = CliRunner().invoke(app, ["ablation", "--help"])
    assert out.exit_code == 0 and "--variants" in out.output
    assert CliRunner().invoke(app, ["kge", "--help"]).exit_code == 0


def test_several_seeds_give_the_mean_and_each_seed(tmp_path):
    ds = toy_dataset()
    params = {"id": FAST}
    one = {
        s: run_ablation(ds, ["id"], epochs=2, patience=0, seed=s, params=params, log=lambda m: None)
        for s in (3, 4)
    }
    rep = run_ablation(ds, ["id"], epochs=2, patience=0, seed=[3, 4], params=params, log=print)
    (row,) = rep["rows"]
    singles = [one[s]["rows"][0] for s in (3, 4)]
    assert rep["seeds"] == [3, 4] and "mean over split seeds [3, 4]" in rep["protocol"]
    # each seed's fit is the single-seed run's (same split, same fit seed) ...
    assert row["per_seed"]["3"]["ndcg@10"] == pytest.approx(singles[0]["ndcg@10"])
    assert row["per_seed"]["4"]["sparse_ndcg@10"] == pytest.approx(singles[1]["sparse_ndcg@10"])
    # ... and the row is their mean
    for k in ("ndcg@10", "recall@10", "sparse_ndcg@10"):
        assert row[k] == pytest.approx((singles[0][k] + singles[1][k]) / 2)
    write_ablation_report(rep, tmp_path)
    md = (tmp_path / "ablation.md").read_text()
    assert "NDCG@10 per seed" in md
    assert f"{singles[0]['ndcg@10']:.4f} / {singles[1]['ndcg@10']:.4f}" in md
    with pytest.raises(ConfigError, match="at least one seed"):
        run_ablation(ds, ["id"], seed=[])


def test_ablation_and_kge_say_what_they_do_and_how_long(tmp_path, capsys):
    """Issue 17 item 12: long commands printed nothing for minutes."""
    lines: list[str] = []
    run_ablation(toy_dataset(), ["id"], epochs=5, patience=0, params={"id": FAST}, log=lines.append)
    assert lines[0].startswith("ablation: 1 variant(s) x 1 split seed(s) = 1 fits")
    assert "      id: fitting mm_mf (up to 5 epochs)" in lines
    assert any(x.startswith("      id: epoch 5/5 · ") and "s/epoch" in x for x in lines)

    from fusionrec.cli.main import main

    path = tmp_path / "toy"
    toy_dataset().save(path)
    assert main(["kge", "--dataset", str(path), "--epochs", "3", "--dim", "8", "--max-test", "20"]) == 0
    out = capsys.readouterr().out.replace("\n", " ")
    assert "kge: training transe (dim 8) on" in out and "for 3 epochs" in out
    assert " s per epoch, so about " in out and "to go" in out
