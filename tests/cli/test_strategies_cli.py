"""The ``ensemble`` and ``distill`` sub-commands on a small saved dataset."""

from __future__ import annotations

import json

from fusionrec.cli.main import main
from fusionrec.testing import toy_dataset


def test_ensemble_and_distill_commands(tmp_path, capsys):
    data = toy_dataset(n_users=30, n_items=20).save(tmp_path / "toy")
    assert (
        main(
            [
                "ensemble",
                "--members",
                "ease,pop",
                "--data",
                str(data),
                "--output",
                str(tmp_path / "e"),
            ]
        )
        == 0
    )
    res = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert res["model"] == "ensemble" and 0 <= res["metrics"]["ndcg@10"] <= 1
    assert (tmp_path / "e" / "models" / "ensemble" / "members" / "0-ease").is_dir()
    args = [
        "distill",
        "--teacher",
        "ease",
        "--param",
        "epochs=2",
        "--param",
        "lam=0.5",
        "--data",
        str(data),
        "--output",
        str(tmp_path / "d"),
    ]
    assert main(args) == 0
    assert json.loads((tmp_path / "d" / "metrics.json").read_text())["params"]["lam"] == 0.5
    assert (
        main(
            [
                "ensemble",
                "--members",
                "ease",
                "--weights",
                "x",
                "--data",
                str(data),
                "--output",
                str(tmp_path / "x"),
            ]
        )
        == 1
    )
    assert "--weights must be numbers" in capsys.readouterr().err
