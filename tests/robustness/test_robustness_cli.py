"""``fusionrec robustness attack``: refusals, and a real run printing before/after figures."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from fusionrec.cli.main import app


def test_refusals(tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["robustness", "attack", "--attack", "random"])
    assert r.exit_code != 0 and "exactly one of --model-dir" in str(r.exception)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data: {name: ml-100k}\nmodel: {name: pop}\nseed: 2020\n")
    r = CliRunner().invoke(app, ["robustness", "attack", "-c", str(cfg), "--attack", "nope"])
    assert r.exit_code != 0 and "unknown attack" in str(r.exception)


def test_pop_bandwagon_with_detector(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data: {name: ml-100k}\nmodel: {name: pop}\nseed: 2020\n")
    r = CliRunner().invoke(app, ["robustness", "attack", "-c", str(cfg), "--attack", "bandwagon", "--targets", "1",
                                 "--fake-users", "200", "--defence", "detector", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output.strip().splitlines()[-1])
    clean, attacked, defended = out["rows"]
    assert (clean["attack"], attacked["attack"], defended["defence"]) == ("none", "bandwagon", "detector")
    # 200 fake raters lift the long-tail target into Pop's top-50 (measured 0.651 of real users)
    assert clean["target_hr50"] == 0.0 and attacked["target_hr50"] > 0.5
    assert defended["det_recall"] == 1.0 and defended["target_hr50"] == 0.0
