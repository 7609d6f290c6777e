"""Shared conformance checks for every model (``fusionrec.testing.check_recommender``).

Other models join by appending ``(registry name, fast params)`` to ``CONFORMANCE_CASES``;
keep the params fast (a few epochs on the 60x40 toy dataset, device "cpu").
"""

from __future__ import annotations

import numpy as np
import pytest

from fusionrec.errors import ConfigError
from fusionrec.models import get_model
from fusionrec.models.base import Capabilities, ModelConfig, Recommender
from fusionrec.testing import CHECKS, ConformanceError, check_recommender, toy_dataset

CONFORMANCE_CASES: list[tuple[str, dict]] = [
    ("pop", {}),
    ("ease", {"reg_weight": 10.0}),
    ("itemknn", {"k": 10}),
    ("itemknn", {"k": 5, "shrink": 2.0}),
    ("bpr", {"epochs": 5, "device": "cpu"}),
]


@pytest.mark.parametrize(
    ("name", "params"),
    CONFORMANCE_CASES,
    ids=[f"{n}-{i}" for i, (n, _) in enumerate(CONFORMANCE_CASES)],
)
def test_model_conforms(name: str, params: dict) -> None:
    cls = get_model(name)
    report = check_recommender(cls, params)
    assert report.model == name
    ran = set(report.passed) | set(report.skipped)
    assert ran == set(CHECKS)
    if cls.capabilities.cold_start_users:
        assert "score_histories" in report.passed


# ---------------------------------------------------------------- the checker itself
class _BrokenConfig(ModelConfig):
    """No parameters."""


class _Broken(Recommender):
    """A deliberately faulty model: recommends seen items, NaN scores for one item, etc."""

    name = "broken"
    Config = _BrokenConfig
    capabilities = Capabilities()
    flaw = "nan"

    def _fit(self, dataset, valid, seed):
        self.w_ = np.random.default_rng(seed).normal(size=dataset.n_items).astype(np.float32)

    def score_indices(self, user_idx, item_idx=None):
        s = np.tile(self.w_, (len(np.atleast_1d(user_idx)), 1))
        if self.flaw == "nan":
            s[:, 0] = np.nan
        if self.flaw == "subset":
            return s  # ignores item_idx
        return s if item_idx is None else s[:, item_idx]

    def _get_state(self):
        return {"w": self.w_}

    def _set_state(self, state):
        self.w_ = state["w"]


def _flawed(flaw: str) -> type[Recommender]:
    return type(f"Broken_{flaw}", (_Broken,), {"flaw": flaw})


def test_checker_names_the_failed_check() -> None:
    with pytest.raises(ConformanceError, match="check 'scores_shape_finite' failed: .*non-finite"):
        check_recommender(_flawed("nan"))


def test_checker_catches_ignored_item_subset() -> None:
    with pytest.raises(ConformanceError) as e:
        check_recommender(_flawed("subset"))
    assert e.value.check == "scores_shape_finite"  # the first check that sees the wrong shape


def test_checker_catches_unreproducible_fit() -> None:
    class Unseeded(_Broken):
        flaw = ""

        def _fit(self, dataset, valid, seed):
            self.w_ = np.random.default_rng().normal(size=dataset.n_items).astype(np.float32)

    with pytest.raises(ConformanceError, match="reproducible_fit"):
        check_recommender(Unseeded)


def test_checker_skip_and_unknown_skip() -> None:
    report = check_recommender(
        _flawed(""), skip=("save_load",)
    )  # not registered: load_model cannot find it
    assert report.skipped["save_load"] == "skipped by caller"
    assert "exclude_seen" in report.passed
    with pytest.raises(ValueError, match="unknown checks"):
        check_recommender(_flawed(""), skip=("nope",))


def test_unregistered_model_fails_save_load() -> None:
    with pytest.raises(ConformanceError, match="save_load.*ConfigError|save_load"):
        check_recommender(_flawed(""))


def test_unknown_config_key_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="nope"):
        get_model("itemknn")(nope=3)


def test_toy_dataset_is_deterministic_and_complete() -> None:
    a, b = toy_dataset(), toy_dataset()
    assert np.array_equal(a.user_idx, b.user_idx) and np.array_equal(a.item_idx, b.item_idx)
    assert (a.n_users, a.n_items) == (60, 40)
    assert a.user_activity().min() >= 4 and a.item_popularity().min() >= 1
    assert a.kg is not None and a.kg.n_linked_items == 40
    assert a.item_titles() is not None and all(a.item_text())
    assert a.timestamp is not None and a.rating is not None and "image" in a.item_embeddings
    # planted groups: most interactions stay inside the user's group
    u_grp = a.users.to_idx([f"u{u}" for u in range(60)]) >= 0  # all known
    assert u_grp.all()
    ug = np.array([int(x[1:]) >= 30 for x in a.users.ids])
    ig = np.array([int(x[1:]) >= 20 for x in a.items.ids])
    inside = (ug[a.user_idx] == ig[a.item_idx]).mean()
    assert inside > 0.85
    assert not np.array_equal(toy_dataset(seed=1).item_idx, a.item_idx)
