"""The API contract every model keeps (DESIGN.md, "Core interfaces"), one function per check.

Each check takes the :class:`~fusionrec.testing._subject.Subject` under test and raises
``AssertionError`` (or any exception) when the model breaks the contract; the runner in
``conformance.py`` reports it under the check's name.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from fusionrec.errors import ConfigError, ModelStateError, UnknownIdError
from fusionrec.models.base import load_model
from fusionrec.testing._subject import Subject, close, expect, fingerprint, saved_folder_problems

__all__ = ["API_CHECKS"]


# ----------------------------------------------------------------------------- config
def config_roundtrip(s: Subject) -> None:
    cls = s.cls
    cfg = cls.Config(**s.params)
    again = cls.Config(**cfg.model_dump())
    expect(again == cfg, f"Config(**model_dump()) differs: {again!r} != {cfg!r}")
    json_again = cls.Config.model_validate_json(cfg.model_dump_json())
    expect(json_again == cfg, "JSON round-trip of the config differs")
    expect(cls(cfg.model_dump()).config == cfg, "model(dict) does not store an equal config")
    expect(cls.Config.model_config.get("extra") == "forbid", "config must set extra='forbid'")


def unknown_config_key(s: Subject) -> None:
    try:
        s.cls(**s.params, definitely_not_a_parameter=1)
    except ConfigError as e:
        expect(
            "definitely_not_a_parameter" in str(e), f"ConfigError does not name the bad key: {e}"
        )
        return
    raise AssertionError("an unknown config key was accepted (expected ConfigError)")


def unfitted_raises(s: Subject) -> None:
    m = s.new()
    try:
        m.score(s.dataset.users.ids[:1])
    except ModelStateError:
        return
    raise AssertionError("score() on an unfitted model did not raise ModelStateError")


# -------------------------------------------------------------------------------- fit
def fit_returns_self(s: Subject) -> None:
    model, out, _ = s.fit_once()
    expect(out is model, f"fit returned {type(out).__name__}, not self")


def dataset_not_mutated(s: Subject) -> None:
    _, _, before = s.fit_once()
    _ = s.full  # scoring must not mutate it either
    expect(fingerprint(s.dataset) == before, "fit changed the training dataset")


def reproducible_fit(s: Subject) -> None:
    again = s.new().fit(s.dataset, seed=s.seed)
    expect(
        close(np.asarray(again.score(s.dataset.users.ids)), s.full),
        "two fits with the same seed give different scores",
    )


# ----------------------------------------------------------------------------- scores
def scores_shape_finite(s: Subject) -> None:
    ds, full, model = s.dataset, s.full, s.model
    expect(
        full.shape == (ds.n_users, ds.n_items),
        f"score(all users) has shape {full.shape}, expected {(ds.n_users, ds.n_items)}",
    )
    expect(
        np.issubdtype(full.dtype, np.floating), f"scores have dtype {full.dtype}, expected float"
    )
    expect(bool(np.isfinite(full).all()), f"{int((~np.isfinite(full)).sum())} non-finite scores")
    subset = s.subset()
    sub = np.asarray(model.score(ds.users.ids[:3], ds.items.ids[subset]))
    expect(
        sub.shape == (3, len(subset)),
        f"score(users, items) has shape {sub.shape}, expected {(3, len(subset))}",
    )
    expect(close(np.asarray(model.score(ds.users.ids)), full), "two score() calls differ")


def score_subset_columns(s: Subject) -> None:
    subset = s.subset()
    sub = np.asarray(s.model.score_indices(np.arange(s.dataset.n_users), subset))
    expect(
        close(sub, s.full[:, subset]),
        "score_indices(users, items) differs from the matching columns of the full scores",
    )


# --------------------------------------------------------------------- recommendation
def unknown_user(s: Subject) -> None:
    model, users, k, n_items = s.model, s.dataset.users.ids, s.k, s.dataset.n_items
    try:
        model.score(["__no_such_user__"])
    except UnknownIdError:
        pass
    else:
        raise AssertionError("score() of an unknown user id did not raise UnknownIdError")
    rec = model.recommend(["__no_such_user__", users[0]], k=k)
    cold = rec[rec["user_id"] == "__no_such_user__"]
    expect(
        len(cold) == min(k, n_items),
        f"unknown user got {len(cold)} fallback items, expected {min(k, n_items)}",
    )
    expect(
        bool(cold["fallback"].all()), "recommend() for an unknown user is not marked fallback=True"
    )
    expect(
        not rec[rec["user_id"] == str(users[0])]["fallback"].any(),
        "a known user was marked fallback",
    )
    try:
        model.recommend(["__no_such_user__"], k=k, unknown="raise")
    except UnknownIdError:
        return
    raise AssertionError("recommend(unknown='raise') did not raise UnknownIdError")


def _history(s: Subject, u: int) -> np.ndarray:
    seen = s.dataset.matrix("csr")
    return seen.indices[seen.indptr[u] : seen.indptr[u + 1]]


def exclude_seen(s: Subject) -> None:
    ds, model, k = s.dataset, s.model, s.k
    users, n_items = ds.users.ids, ds.n_items
    items, _ = model.recommend_indices(np.arange(ds.n_users), k=k)
    for u in range(ds.n_users):
        bad = set(_history(s, u).tolist()).intersection(items[u].tolist())
        expect(not bad, f"user {users[u]!r} was recommended training items {sorted(bad)}")
    df = model.recommend(users[:5], k=k)
    for uid, g in df.groupby("user_id"):
        hist = set(ds.items.to_ids(_history(s, ds.users.index(uid))).tolist())
        expect(
            not hist.intersection(g["item_id"]), f"recommend() returned a training item for {uid!r}"
        )
    everything = model.recommend(users[:3], k=n_items, exclude_seen=False)
    for uid, g in everything.groupby("user_id"):
        expect(
            len(g) == n_items,
            f"exclude_seen=False with k=n_items gave {len(g)} items for {uid!r}, expected {n_items}",
        )


def candidates(s: Subject) -> None:
    ds, model = s.dataset, s.model
    cand = ds.items.ids[s.subset()]
    df = model.recommend(ds.users.ids, k=s.k, candidates=cand)
    expect(
        set(df["item_id"]).issubset(set(cand.tolist())),
        "recommend() returned items outside candidates",
    )
    few = cand[:3]
    df2 = model.recommend(ds.users.ids[:4], k=10, candidates=few, exclude_seen=False)
    for uid, g in df2.groupby("user_id"):
        expect(
            sorted(g["item_id"]) == sorted(few.tolist()),
            f"with exclude_seen=False {uid!r} should get exactly the 3 candidates",
        )


def batch_equals_single(s: Subject) -> None:
    ds, model, full = s.dataset, s.model, s.full
    users = ds.users.ids
    items_b, scores_b = model.recommend_indices(np.arange(ds.n_users), k=s.k)
    for u in range(ds.n_users):
        items_s, scores_s = model.recommend_indices(np.array([u]), k=s.k)
        expect(
            close(scores_s[0], scores_b[u]),
            f"user {users[u]!r}: single-user top-k scores differ from the batch",
        )
        # robust to ties: the single-user list must score as the batch list does
        expect(
            close(full[u, items_s[0]], full[u, items_b[u]]),
            f"user {users[u]!r}: single-user top-k differs from the batch",
        )
        row = np.asarray(model.score_indices(np.array([u])))[0]
        expect(
            close(row, full[u]), f"user {users[u]!r}: score of one user differs from the batch row"
        )


def similar_items(s: Subject) -> None:
    df = s.model.similar_items(s.dataset.items.ids[:3], k=3)
    expect(
        list(df.columns) == ["item_id", "similar_item_id", "rank", "score"],
        f"similar_items columns {list(df.columns)}",
    )
    expect(
        not (df["item_id"] == df["similar_item_id"]).any(), "an item is listed as similar to itself"
    )
    expect(
        bool((df.groupby("item_id").size() <= 3).all()),
        "similar_items returned more than k rows per item",
    )


# ------------------------------------------------------------------------ persistence
def save_load(s: Subject) -> None:
    model, users, full, cls = s.model, s.dataset.users.ids, s.full, s.cls
    with tempfile.TemporaryDirectory() as tmp:
        path = model.save(Path(tmp) / "model")
        problems = saved_folder_problems(path)
        expect(not problems, "saved folder: " + "; ".join(problems))
        loaded = load_model(path)
        expect(type(loaded) is type(model), f"load_model gave {type(loaded).__name__}")
        expect(loaded.config == model.config, "loaded config differs")
        expect(
            close(np.asarray(loaded.score(users)), full),
            "loaded model scores differ from the saved model's",
        )
        a = model.recommend(users[:5], k=s.k)
        b = loaded.recommend(users[:5], k=s.k)
        expect(
            close(a["score"].to_numpy(), b["score"].to_numpy()),
            "loaded model recommends differently",
        )
        expect(
            isinstance(cls.load(path), cls), f"{cls.__name__}.load did not return a {cls.__name__}"
        )


#: (name, check, doc) in the order they run; none depends on a capability.
API_CHECKS = (
    (
        "config_roundtrip",
        config_roundtrip,
        "Config survives dict and JSON round-trips; extra='forbid'",
    ),
    ("unknown_config_key", unknown_config_key, "an unknown parameter is a ConfigError naming it"),
    ("unfitted_raises", unfitted_raises, "score() before fit raises ModelStateError"),
    ("fit_returns_self", fit_returns_self, "fit() returns the model itself"),
    ("dataset_not_mutated", dataset_not_mutated, "fit and score leave the dataset unchanged"),
    ("scores_shape_finite", scores_shape_finite, "scores are finite floats of the right shape"),
    ("score_subset_columns", score_subset_columns, "scoring an item subset = those columns"),
    ("reproducible_fit", reproducible_fit, "two fits with one seed give the same scores"),
    ("unknown_user", unknown_user, "unknown users raise in score(), fall back in recommend()"),
    ("exclude_seen", exclude_seen, "training items are never recommended by default"),
    ("candidates", candidates, "recommend(candidates=...) stays inside them"),
    ("batch_equals_single", batch_equals_single, "one user at a time = the batch"),
    ("similar_items", similar_items, "similar_items: right columns, never the item itself"),
    (
        "save_load",
        save_load,
        "save -> load gives equal scores; the folder has no pickles or strays",
    ),
)
