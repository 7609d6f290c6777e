"""``fusionrec models`` fits an 80-column terminal; ``fusionrec models NAME`` documents every
parameter, with the Trainer's settings grouped apart."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from fusionrec.cli.main import app
from fusionrec.cli.models_cmd import detail_lines, listing_lines
from fusionrec.models.registry import list_models

NAMES = [i.name for i in list_models()]


def test_listing_is_one_line_per_model_within_80_columns():
    res = CliRunner().invoke(app, ["models"], env={"COLUMNS": "80"})
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert max(len(line) for line in lines) <= 80
    firsts = [line.split()[0] for line in lines if line.strip()]
    for name in NAMES:
        assert firsts.count(name) == 1, name
    bpr = next(line.split() for line in lines if line.startswith("bpr "))
    assert bpr[1:3] == ["classic", "gpu"]
    lm = next(line.split() for line in lines if line.startswith("lm_sasrec "))
    assert lm[1:3] == ["text", "text,time,cold:iu,seq"]


def test_listing_lines_honour_a_narrower_width():
    assert max(len(line) for line in listing_lines(width=60)) <= 60


@pytest.mark.parametrize("name", NAMES)
def test_every_model_detail_fits_80_columns_and_documents_every_field(name):
    lines = detail_lines(name)
    assert max(len(line) for line in lines) <= 80
    text = "\n".join(lines)
    cls = next(i.cls for i in list_models() if i.name == name)
    for field in cls.Config.model_fields:
        assert f"  {field}: " in text, field


def test_bpr_detail_separates_model_parameters_from_trainer_settings():
    res = CliRunner().invoke(app, ["models", "bpr"], env={"COLUMNS": "80"})
    assert res.exit_code == 0, res.output
    out = res.output
    assert "  embedding_dim: int = 64\n      Dimension of the user and item embeddings" in out
    trainer = out.index("Trainer settings")
    assert out.index("  reg_weight: float = 0.01") < trainer < out.index("  lr: float = 0.005")
    assert "device" not in out.split("Run options")[0]
    assert "Deprecated names still accepted: embedding_size -> embedding_dim" in out


def test_unknown_model_is_a_one_line_error():
    res = CliRunner().invoke(app, ["models", "nope"])
    assert res.exit_code != 0
    assert "unknown model 'nope'" in str(res.exception or res.output)
