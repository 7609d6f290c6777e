"""One check per declared capability: a model that claims something must show it.

- ``cold_start_items``: items with no training interaction but an obvious side signal (text,
  KG entities, features, an "image" vector pointing at their group on the toy data) rank for
  the users of their group above chance, both among the cold items and against warm items.
- ``cold_start_users``: ad-hoc histories get finite scores of the right shape, and a history
  of one group's items ranks that group's other items first (unless the model gives every
  known user the same scores too, in which case the history must get those scores).
- ``needs_*``: fitting on the dataset without that part is a ConfigError naming the part.
- ``rating_prediction``: predicted ratings lie in the training range and follow the planted
  ratings (a user's own-group items rated above the other group's).
- ``sequential``: the order of a history changes the scores.

The signal checks need the planted groups of :func:`fusionrec.testing.toy_dataset`; on other
data they are skipped with that reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from fusionrec.data.dataset import Dataset
from fusionrec.errors import ConfigError
from fusionrec.models.base import Capabilities, Recommender
from fusionrec.testing._subject import Subject, expect

__all__ = ["CAPABILITY_CHECKS", "COLD_ITEMS_PER_GROUP", "cold_item_auc"]

#: cold items per group in ``cold_item_signal`` (their interactions are removed before the fit)
COLD_ITEMS_PER_GROUP = 3
#: least mean AUC of a user's own-group cold items against the other group's cold items
MIN_COLD_VS_COLD = 0.75
#: least mean AUC of own-group cold items against the warm unseen items of the other group
#: (0.5 = chance; "every cold item below every warm one" gives 0)
MIN_COLD_VS_WARM = 0.5
#: least mean AUC of a group history's own-group items against the other group's
MIN_HISTORY_AUC = 0.6


def _auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """P(a positive outscores a negative), ties counting one half."""
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    d = pos[:, None] - neg[None, :]
    return float((d > 0).mean() + 0.5 * (d == 0).mean())


def _planted(s: Subject):
    p = s.planted()
    if p is None:
        raise AssertionError("needs the planted groups of the toy data")
    return p


# ------------------------------------------------------------------------ cold items
def cold_item_split(ds: Dataset, item_group: np.ndarray) -> tuple[Dataset, np.ndarray]:
    """(the dataset without any interaction of the cold items, the cold item indices): the
    first ``COLD_ITEMS_PER_GROUP`` items of each group at a stride, so they are spread out."""
    cold = []
    for g in (0, 1):
        members = np.flatnonzero(item_group == g)
        step = max(1, len(members) // COLD_ITEMS_PER_GROUP)
        cold.extend(members[1::step][:COLD_ITEMS_PER_GROUP].tolist())
    cold_arr = np.asarray(sorted(cold), dtype=np.int64)
    keep = ~np.isin(ds.item_idx, cold_arr)
    return ds.with_interactions(keep, name=f"{ds.name}:cold-items"), cold_arr


def cold_item_auc(
    scores: np.ndarray,
    seen: np.ndarray,
    user_group: np.ndarray,
    item_group: np.ndarray,
    cold: np.ndarray,
) -> tuple[float, float]:
    """(mean AUC own-group cold vs other-group cold, mean AUC own-group cold vs other-group
    warm unseen items) over users; ``seen`` is the boolean (users, items) training mask."""
    is_cold = np.zeros(scores.shape[1], bool)
    is_cold[cold] = True
    cc, cw = [], []
    for u in range(scores.shape[0]):
        g = user_group[u]
        own = scores[u, is_cold & (item_group == g)]
        other_cold = scores[u, is_cold & (item_group != g)]
        other_warm = scores[u, ~is_cold & (item_group != g) & ~seen[u]]
        cc.append(_auc(own, other_cold))
        cw.append(_auc(own, other_warm))
    return float(np.nanmean(cc)), float(np.nanmean(cw))


def cold_item_signal(s: Subject) -> None:
    p = _planted(s)
    train, cold = cold_item_split(s.dataset, p.item_group)
    model = s.cls(**s.params_for("cold_item_signal")).fit(train, seed=s.seed)
    scores = np.asarray(model.score_indices(np.arange(train.n_users)), dtype=np.float64)
    expect(bool(np.isfinite(scores[:, cold]).all()), "cold items got non-finite scores")
    seen = train.matrix("csr").toarray() > 0
    vs_cold, vs_warm = cold_item_auc(scores, seen, p.user_group, p.item_group, cold)
    expect(
        vs_cold >= MIN_COLD_VS_COLD,
        f"cold items of a user's own group outrank the other group's cold items with AUC "
        f"{vs_cold:.3f} (needs >= {MIN_COLD_VS_COLD}; 0.5 = chance)",
    )
    expect(
        vs_warm >= MIN_COLD_VS_WARM,
        f"cold items of a user's own group outrank the other group's warm items with AUC "
        f"{vs_warm:.3f} (needs >= {MIN_COLD_VS_WARM}; 0 = every cold item below every warm one)",
    )


# ------------------------------------------------------------------------ cold users
def _histories(s: Subject) -> list[np.ndarray]:
    seen = s.dataset.matrix("csr")
    return [seen.indices[seen.indptr[u] : seen.indptr[u + 1]] for u in range(3)] + [
        np.zeros(0, np.int64)
    ]


def score_histories(s: Subject) -> None:
    n_items = s.dataset.n_items
    sc = np.asarray(s.model.score_histories(_histories(s)))
    expect(sc.shape == (4, n_items), f"score_histories shape {sc.shape}, expected {(4, n_items)}")
    expect(
        bool(np.isfinite(sc).all()),
        "score_histories gave non-finite scores (incl. an empty history)",
    )


def history_signal(s: Subject) -> None:
    p = _planted(s)
    model, full = s.model, s.full
    hists, owners = [], []
    for g in (0, 1):
        members = np.flatnonzero(p.item_group == g)
        for start in (0, len(members) // 2):
            hists.append(members[start : start + 5])
            owners.append(g)
    sc = np.asarray(model.score_histories(hists), dtype=np.float64)
    if bool(np.allclose(full, full[:1], rtol=1e-5, atol=1e-6)):  # not personalised at all
        expect(
            bool(np.allclose(sc, full[:1], rtol=1e-5, atol=1e-5)),
            "the model gives every known user the same scores but scores histories differently",
        )
        return
    aucs = []
    for h, g, row in zip(hists, owners, sc, strict=True):
        unseen = np.ones(len(row), bool)
        unseen[h] = False
        aucs.append(_auc(row[unseen & (p.item_group == g)], row[unseen & (p.item_group != g)]))
    auc = float(np.mean(aucs))
    expect(
        auc >= MIN_HISTORY_AUC,
        f"a history of one group's items ranks that group's other items first with AUC {auc:.3f} "
        f"(needs >= {MIN_HISTORY_AUC}; 0.5 = chance)",
    )


# --------------------------------------------------------------------------- needs_*
def _without(part: str) -> Callable[[Dataset], Dataset]:
    def strip(ds: Dataset) -> Dataset:
        name = f"{ds.name}:no-{part.replace('_', '-')}"
        if part == "text":
            embs = {k: v for k, v in ds.item_embeddings.items() if k != "text"}
            return replace(ds, text_fields=(), item_embeddings=embs, name=name, _cache={})
        if part == "kg":
            return replace(ds, kg=None, name=name, _cache={})
        if part == "user_features":
            return replace(ds, user_features=None, user_feature_types={}, name=name, _cache={})
        if part == "item_features":
            return replace(
                ds,
                item_features=None,
                item_feature_types={},
                text_fields=(),
                item_embeddings={},
                name=name,
                _cache={},
            )
        return replace(ds, **{part: None}, name=name, _cache={})

    return strip


#: capability -> (dataset part, words the error must contain)
_NEEDS = {
    "needs_text": ("text", "text"),
    "needs_kg": ("kg", "knowledge graph"),
    "needs_user_features": ("user_features", "user features"),
    "needs_item_features": ("item_features", "item features"),
    "needs_timestamps": ("timestamp", "timestamps"),
    "needs_ratings": ("rating", "ratings"),
}


def _refuses(capability: str) -> Callable[[Subject], None]:
    part, words = _NEEDS[capability]

    def check(s: Subject) -> None:
        ds = _without(part)(s.dataset)
        try:
            s.new().fit(ds, seed=s.seed)
        except ConfigError as e:
            expect(
                words in str(e).lower(), f"the ConfigError does not name the missing {words}: {e}"
            )
            return
        raise AssertionError(
            f"fit on a dataset without {words} did not raise ConfigError "
            f"(the model declares {capability})"
        )

    check.__name__ = f"refuses_without_{part}"
    return check


# -------------------------------------------------------------------------- ratings
def _rating_predictor(model: Recommender) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    for attr in ("predict_rating_indices", "predict_indices"):
        fn = getattr(model, attr, None)
        if callable(fn):
            return fn
    raise AssertionError(
        "declares rating_prediction but has neither predict_rating_indices nor predict_indices"
    )


def rating_range(s: Subject) -> None:
    p = _planted(s)
    ds = s.dataset
    expect(ds.rating is not None, "the check needs a dataset with ratings")
    model = s.cls(**s.params_for("rating_range")).fit(ds, seed=s.seed)
    pred = np.asarray(_rating_predictor(model)(ds.user_idx, ds.item_idx), dtype=np.float64)
    expect(
        pred.shape == ds.user_idx.shape,
        f"predicted {pred.shape} ratings for {ds.user_idx.shape} pairs",
    )
    expect(bool(np.isfinite(pred).all()), "non-finite predicted ratings")
    lo, hi = float(ds.rating.min()), float(ds.rating.max())
    slack = 0.5 * (hi - lo)
    expect(
        bool(((pred >= lo - slack) & (pred <= hi + slack)).all()),
        f"predicted ratings span [{pred.min():.2f}, {pred.max():.2f}], outside the training range "
        f"[{lo}, {hi}] widened by {slack}",
    )
    own = p.user_group[ds.user_idx] == p.item_group[ds.item_idx]
    gap = pred[own].mean() - pred[~own].mean()
    expect(
        gap > 0.25 * (ds.rating[own].mean() - ds.rating[~own].mean()),
        f"own-group pairs (rated {ds.rating[own].mean():.2f} on average) are predicted only "
        f"{gap:.2f} above other-group pairs (rated {ds.rating[~own].mean():.2f})",
    )


# ------------------------------------------------------------------------ sequential
def sequence_order(s: Subject) -> None:
    seqs = [q for q in s.dataset.sequences() if len(q) >= 3][:8]
    expect(len(seqs) > 0, "no training sequence of 3 or more items to reorder")
    if s.caps.cold_start_users:
        a = np.asarray(s.model.score_histories(seqs), dtype=np.float64)
        b = np.asarray(s.model.score_histories([q[::-1].copy() for q in seqs]), dtype=np.float64)
    else:  # the same interactions with time running backwards must train a different model
        ds = s.dataset
        expect(ds.timestamp is not None, "the check needs timestamps")
        flipped = replace(ds, timestamp=-ds.timestamp, _cache={})
        a = s.full
        b = np.asarray(s.new().fit(flipped, seed=s.seed).score(ds.users.ids), dtype=np.float64)
    differ = [not np.allclose(x, y, rtol=1e-4, atol=1e-5) for x, y in zip(a, b, strict=True)]
    expect(
        float(np.mean(differ)) >= 0.5,
        f"reversing the order of a history changed the scores for only {sum(differ)} of {len(differ)}",
    )


def _needs(flag: str) -> Callable[[Capabilities], str | None]:
    return lambda c: None if getattr(c, flag) else f"model does not declare {flag}"


#: (name, check, applies(capabilities) -> skip reason or None, needs planted groups, doc)
CAPABILITY_CHECKS: tuple[tuple[str, Callable[[Subject], None], Callable[[Capabilities], str | None], bool, str], ...] = (
    ("score_histories", score_histories, _needs("cold_start_users"), False,
     "ad-hoc histories (incl. empty) get finite scores of the right shape"),
    ("history_signal", history_signal, _needs("cold_start_users"), True,
     "a history of one group's items ranks that group's other items first"),
    ("cold_item_signal", cold_item_signal, _needs("cold_start_items"), True,
     "cold items with an obvious side signal rank above chance for their group"),
    *(
        (f"refuses_without_{part}", _refuses(cap), _needs(cap), False,
         f"fit without {words} is a ConfigError naming them")
        for cap, (part, words) in _NEEDS.items()
    ),
    ("rating_range", rating_range, _needs("rating_prediction"), True,
     "predicted ratings stay in range and follow the planted ratings"),
    ("sequence_order", sequence_order, _needs("sequential"), False,
     "the order of a history changes the scores"),
)  # fmt: skip
