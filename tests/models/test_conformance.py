"""Every conformance check over every registered model, one test per (case, check), and the
checker's own tests (a deliberately broken model fails the named check).

The cases live in one table, ``fusionrec.testing.CONFORMANCE_CASES``; a registered model
without a row there fails ``test_every_registered_model_has_a_case``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from fusionrec.errors import ConfigError
from fusionrec.models import get_model, list_models
from fusionrec.models.base import Capabilities, ModelConfig, Recommender
from fusionrec.testing import (
    CHECK_DOCS,
    CHECKS,
    CONFORMANCE_CASES,
    ConformanceError,
    check_recommender,
    conformance_checks,
    parametrize_conformance,
    skipped_checks,
    toy_dataset,
)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny models run fastest on one intra-op thread (and do not fight other test processes)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.mark.parametrize("check", parametrize_conformance(CONFORMANCE_CASES))
def test_conformance(check: Callable[[], None]) -> None:
    check()


def test_every_registered_model_has_a_case() -> None:
    covered = {c.model for c in CONFORMANCE_CASES}
    missing = sorted(m.name for m in list_models() if m.name not in covered)
    assert not missing, f"registered models without a row in CONFORMANCE_CASES: {missing}"
    unknown = sorted(covered - {m.name for m in list_models()})
    assert not unknown, f"CONFORMANCE_CASES rows for unregistered models: {unknown}"


def test_case_ids_are_unique_and_skips_name_real_checks() -> None:
    ids = [c.id for c in CONFORMANCE_CASES]
    assert len(ids) == len(set(ids))
    for c in CONFORMANCE_CASES:
        assert set(c.skip) <= set(CHECKS), c.id
        assert set(c.overrides) <= set(CHECKS), c.id


def test_every_declared_capability_has_a_check_that_runs() -> None:
    """A model declaring a capability gets that capability's check (none is skipped for it)."""
    per_cap = {
        "cold_start_items": "cold_item_signal",
        "cold_start_users": "history_signal",
        "needs_text": "refuses_without_text",
        "needs_kg": "refuses_without_kg",
        "needs_user_features": "refuses_without_user_features",
        "needs_item_features": "refuses_without_item_features",
        "needs_timestamps": "refuses_without_timestamp",
        "needs_ratings": "refuses_without_rating",
        "rating_prediction": "rating_range",
        "sequential": "sequence_order",
    }
    assert set(per_cap.values()) <= set(CHECKS)
    for case in CONFORMANCE_CASES:
        cls = get_model(case.model)
        skipped = skipped_checks(cls, case.params, skip=case.skip)
        for cap, check in per_cap.items():
            declared = getattr(cls(**case.params).capabilities, cap)  # may follow the config
            assert (check not in skipped) == declared, (case.id, cap, skipped.get(check))
    assert set(CHECK_DOCS) == set(CHECKS) and all(CHECK_DOCS.values())


def test_parametrize_ids_are_model_check() -> None:
    params = parametrize_conformance(CONFORMANCE_CASES[:1])
    assert [p.id for p in params] == [f"pop-{c}" for c in CHECKS]


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


def _flawed(flaw: str, **attrs) -> type[Recommender]:
    return type(f"Broken_{flaw}", (_Broken,), {"flaw": flaw, **attrs})


def _run(cls: type[Recommender], check: str) -> None:
    """Run one named check alone, as the parametrized suite does."""
    (fn,) = [f for n, f in conformance_checks(cls) if n == check]
    fn()


def test_checker_names_the_failed_check() -> None:
    with pytest.raises(ConformanceError, match="check 'scores_shape_finite' failed: .*non-finite"):
        check_recommender(_flawed("nan"))


def test_checker_reports_every_failure_not_only_the_first() -> None:
    with pytest.raises(ConformanceError) as e:
        check_recommender(_flawed("nan"))  # also unregistered: save_load fails too
    assert e.value.check == "scores_shape_finite"
    assert {"scores_shape_finite", "save_load"} <= set(e.value.failures)
    assert "checks failed" in str(e.value) and "check 'save_load' failed" in str(e.value)


def test_checker_catches_ignored_item_subset() -> None:
    with pytest.raises(ConformanceError) as e:
        check_recommender(_flawed("subset"))
    assert e.value.check == "scores_shape_finite"  # the first check that sees the wrong shape
    assert "score_subset_columns" in e.value.failures


def test_checker_catches_unreproducible_fit() -> None:
    class Unseeded(_Broken):
        flaw = ""

        def _fit(self, dataset, valid, seed):
            self.w_ = np.random.default_rng().normal(size=dataset.n_items).astype(np.float32)

    with pytest.raises(ConformanceError, match="reproducible_fit"):
        _run(Unseeded, "reproducible_fit")


def test_single_checks_run_alone_and_share_one_fit() -> None:
    fits = []

    class Counting(_Broken):
        flaw = ""

        def _fit(self, dataset, valid, seed):
            fits.append(seed)
            super()._fit(dataset, valid, seed)

    checks = dict(conformance_checks(Counting))
    for name in ("fit_returns_self", "scores_shape_finite", "exclude_seen", "similar_items"):
        checks[name]()
    assert len(fits) == 1
    with pytest.raises(ConformanceError, match="broken: check 'save_load' failed"):
        checks["save_load"]()  # not registered: load_model cannot find it


def test_checker_skip_and_unknown_skip() -> None:
    report = check_recommender(_flawed(""), skip=("save_load",))
    assert report.skipped["save_load"] == "skipped by caller"
    assert "exclude_seen" in report.passed
    assert report.skipped["cold_item_signal"] == "model does not declare cold_start_items"
    assert set(report.passed) | set(report.skipped) == set(CHECKS)
    with pytest.raises(ValueError, match="unknown checks"):
        check_recommender(_flawed(""), skip=("nope",))


def test_unknown_config_key_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="nope"):
        get_model("itemknn")(nope=3)


# ------------------------------------------------ capability checks catch false claims
def test_a_false_cold_start_items_claim_fails_cold_item_signal() -> None:
    """Scores from training popularity only: cold items (no interactions) rank last."""

    class PopClaimsCold(_Broken):
        flaw = ""
        capabilities = Capabilities(cold_start_items=True)

        def _fit(self, dataset, valid, seed):
            self.w_ = dataset.item_popularity().astype(np.float32)

    with pytest.raises(ConformanceError, match="cold_item_signal.*AUC 0.500"):
        _run(PopClaimsCold, "cold_item_signal")


def test_an_honest_cold_start_model_passes_cold_item_signal() -> None:
    """Scores = does the item's genre match the user's majority genre (features only)."""

    class GenreMatch(_Broken):
        flaw = ""
        capabilities = Capabilities(cold_start_items=True)

        def _fit(self, dataset, valid, seed):
            g = (dataset.item_features["genre"] == "romance").to_numpy().astype(np.float32)
            m = dataset.matrix("csr")
            share = np.asarray(m @ g).ravel() / np.maximum(np.diff(m.indptr), 1)
            self.s_ = np.where(share[:, None] > 0.5, g[None, :], 1 - g[None, :]).astype(np.float32)

        def score_indices(self, user_idx, item_idx=None):
            s = self.s_[np.asarray(user_idx)]
            return s if item_idx is None else s[:, item_idx]

    _run(GenreMatch, "cold_item_signal")


def test_a_history_blind_model_fails_history_signal() -> None:
    class Blind(_Broken):
        flaw = ""
        capabilities = Capabilities(cold_start_users=True)

        def _fit(self, dataset, valid, seed):
            m = dataset.matrix("csr")
            self.s_ = np.asarray(m @ (m.T @ m).toarray(), dtype=np.float32)  # personalised

        def score_indices(self, user_idx, item_idx=None):
            s = self.s_[np.asarray(user_idx)]
            return s if item_idx is None else s[:, item_idx]

        def score_histories(self, histories):
            return np.tile(self.s_.mean(0), (len(histories), 1))  # ignores the history

    with pytest.raises(ConformanceError, match=r"history_signal.*AUC 0\.[0-6]"):
        _run(Blind, "history_signal")


def test_a_model_that_ignores_a_missing_part_fails_the_refusal_check() -> None:
    class ClaimsKG(_Broken):
        flaw = ""
        capabilities = Capabilities(needs_kg=True)

        def check_dataset(self, dataset):  # forgets to refuse
            return None

    with pytest.raises(ConformanceError, match="refuses_without_kg.*did not raise ConfigError"):
        _run(ClaimsKG, "refuses_without_kg")
    _run(_flawed("", capabilities=Capabilities(needs_kg=True)), "refuses_without_kg")


def test_an_order_blind_sequential_model_fails_sequence_order() -> None:
    class BagOfItems(_Broken):
        flaw = ""
        capabilities = Capabilities(sequential=True, cold_start_users=True)

        def score_histories(self, histories):
            return np.stack([self.w_ + len(h) for h in histories])

    with pytest.raises(ConformanceError, match="sequence_order.*changed the scores for only 0"):
        _run(BagOfItems, "sequence_order")


def test_rating_range_catches_ratings_out_of_range() -> None:
    class WildRatings(_Broken):
        flaw = ""
        capabilities = Capabilities(rating_prediction=True)

        def predict_rating_indices(self, user_idx, item_idx):
            return np.full(len(user_idx), 40.0)

    with pytest.raises(ConformanceError, match="rating_range.*outside the training range"):
        _run(WildRatings, "rating_range")


def test_signal_checks_are_skipped_on_data_without_planted_groups() -> None:
    class Cold(_Broken):
        capabilities = Capabilities(cold_start_items=True)

    skipped = skipped_checks(Cold, dataset=toy_dataset(n_users=8, n_items=8))
    assert "planted groups" in skipped["cold_item_signal"]


def test_toy_dataset_is_deterministic_and_complete() -> None:
    a, b = toy_dataset(), toy_dataset()
    assert np.array_equal(a.user_idx, b.user_idx) and np.array_equal(a.item_idx, b.item_idx)
    assert (a.n_users, a.n_items) == (60, 40)
    assert a.user_activity().min() >= 4 and a.item_popularity().min() >= 1
    assert a.kg is not None and a.kg.n_linked_items == 40
    assert a.item_titles() is not None and all(a.item_text())
    assert a.timestamp is not None and a.rating is not None and "image" in a.item_embeddings
    ug = np.array([int(x[1:]) >= 30 for x in a.users.ids])
    ig = np.array([int(x[1:]) >= 20 for x in a.items.ids])
    inside = (ug[a.user_idx] == ig[a.item_idx]).mean()
    assert inside > 0.85
    assert not np.array_equal(toy_dataset(seed=1).item_idx, a.item_idx)
