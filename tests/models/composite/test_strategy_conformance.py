"""The strategy models pass every shared check (save/load included, nested member folders
allowed), and the save/load check still catches bad nested folders and reloads that drift."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fusionrec.models import registry
from fusionrec.models.composite.distill import Distilled
from fusionrec.models.composite.ensemble import Ensemble
from fusionrec.models.composite.label_propagation import LabelPropagation
from fusionrec.models.composite.multitask import MultiTask
from fusionrec.testing import CHECKS, ConformanceError, check_recommender

CASES = [
    (Ensemble, {"members": [{"name": "ease"}, {"name": "itemknn"}], "method": "weighted"}),
    (Ensemble, {"members": [{"name": "pop"}, {"name": "bpr", "params": {"epochs": 2}}]}),
    (
        Distilled,
        {"teacher": {"name": "ease"}, "embedding_dim": 4, "epochs": 2, "batch_size": 128},
    ),
    (
        MultiTask,
        {"epochs": 2, "batch_size": 128, "embedding_dim": 4, "hidden_dims": (8,), "tower_dim": 4},
    ),
    (LabelPropagation, {"k": 10, "alpha": 0.5}),
]


@pytest.mark.parametrize(
    ("cls", "params"), CASES, ids=[f"{c.name}-{i}" for i, (c, _) in enumerate(CASES)]
)
def test_strategy_models_pass_every_check(cls, params):
    report = check_recommender(cls, params)
    assert "save_load" in report.passed
    assert set(report.passed) | set(report.skipped) == set(CHECKS)
    # only checks of capabilities the model does not declare are skipped
    assert all(r.startswith("model does not declare") for r in report.skipped.values()), (
        report.skipped
    )


@pytest.fixture
def registered(monkeypatch):
    def reg(cls, name: str):
        monkeypatch.setattr(cls, "name", name)
        monkeypatch.setitem(registry._REGISTRY, name, cls)
        return cls

    return reg


MEMBERS = {"members": [{"name": "ease"}, {"name": "pop"}], "weights": (1.0, 1.0)}


def test_checker_catches_an_ensemble_whose_reload_changes_scores(registered):
    class Drifting(Ensemble):
        def _set_state(self, state):
            super()._set_state(state)
            self.weights_ = self.weights_ * np.array([1.0, 0.3])  # reload != saved model

    registered(Drifting, "drifting_ensemble_test")
    with pytest.raises(ConformanceError, match="save_load.*scores differ"):
        check_recommender(Drifting, MEMBERS)


def test_checker_rejects_pickles_and_stray_folders_in_nested_members(registered):
    class PickledMember(Ensemble):
        def _save_files(self, folder: Path) -> None:
            super()._save_files(folder)
            np.save(folder / "members" / "0-ease" / "extra.npy", np.array([{"a": 1}], dtype=object))

    class StrayFolder(Ensemble):
        def _save_files(self, folder: Path) -> None:
            super()._save_files(folder)
            (folder / "cache").mkdir()
            (folder / "cache" / "notes.txt").write_text("x")

    class StrayFile(Ensemble):
        def _save_files(self, folder: Path) -> None:
            super()._save_files(folder)
            (folder / "members" / "1-pop" / "weights.pt").write_bytes(b"\x80\x04junk")

    registered(PickledMember, "pickled_member_test")
    registered(StrayFolder, "stray_folder_test")
    registered(StrayFile, "stray_file_test")
    with pytest.raises(ConformanceError, match=r"members/0-ease/extra.npy needs pickle"):
        check_recommender(PickledMember, MEMBERS)
    with pytest.raises(ConformanceError, match=r"cache/ is neither a saved model"):
        check_recommender(StrayFolder, MEMBERS)
    with pytest.raises(ConformanceError, match=r"unexpected file members/1-pop/weights.pt"):
        check_recommender(StrayFile, MEMBERS)
