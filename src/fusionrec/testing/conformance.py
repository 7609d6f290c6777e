"""``check_recommender``: the checks every registered model must pass (DESIGN.md, "Tests").

Each check has a name; a failure raises :class:`ConformanceError` naming the model and the check
("bpr: check 'save_load' failed: ..."). Checks depending on capabilities are skipped where they
do not apply, and a model may skip named checks it legitimately cannot meet (say why in its test).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fusionrec.data.dataset import Dataset
from fusionrec.errors import ConfigError, ModelStateError, UnknownIdError
from fusionrec.models.base import ModelConfig, Recommender, load_model

__all__ = ["check_recommender", "ConformanceError", "ConformanceReport", "CHECKS"]

#: Names of all checks, in the order they run.
CHECKS = (
    "config_roundtrip",
    "unknown_config_key",
    "unfitted_raises",
    "fit_returns_self",
    "dataset_not_mutated",
    "scores_shape_finite",
    "score_subset_columns",
    "reproducible_fit",
    "unknown_user",
    "exclude_seen",
    "candidates",
    "batch_equals_single",
    "score_histories",
    "similar_items",
    "save_load",
)

_ALLOWED_FILES = ("config.json", "state.safetensors")


def _saved_folder_problems(path: Path, rel: str = "") -> list[str]:
    """What is wrong with a saved model folder: files other than config.json, *.npy and
    state.safetensors, pickles, ``.npy`` needing pickle. A sub-folder is allowed when it is a
    saved model folder itself (nested members, e.g. an ensemble's ``members/0-ease/``) or holds
    only such folders (``members/``); both are checked by the same rules, recursively."""
    problems: list[str] = []
    for p in sorted(path.iterdir()):
        name = f"{rel}{p.name}"
        if p.is_symlink():
            problems.append(f"{name} is a symbolic link")
        elif p.is_dir():
            if (p / "config.json").is_file():
                problems += _saved_folder_problems(p, f"{name}/")
            else:
                subs = sorted(p.iterdir())
                not_models = [
                    f"{name}/{q.name}"
                    for q in subs
                    if not (q.is_dir() and not q.is_symlink() and (q / "config.json").is_file())
                ]
                if not subs or not_models:
                    problems.append(
                        f"sub-folder {name}/ is neither a saved model nor a folder of saved models"
                        + (f" ({', '.join(not_models[:3])})" if not_models else " (empty)")
                    )
                else:
                    for q in subs:
                        problems += _saved_folder_problems(q, f"{name}/{q.name}/")
        elif p.name not in _ALLOWED_FILES and not p.name.endswith(".npy"):
            problems.append(
                f"unexpected file {name} (allowed: config.json, *.npy, state.safetensors)"
            )
        else:
            if p.read_bytes()[:1] == b"\x80":
                problems.append(f"{name} looks like a pickle")
            elif p.name.endswith(".npy"):
                try:
                    np.load(p, allow_pickle=False)
                except ValueError as e:
                    problems.append(f"{name} needs pickle to load ({e})")
    return problems


class ConformanceError(AssertionError):
    """A model failed a conformance check; the message names the model and the check."""

    def __init__(self, model: str, check: str, message: str) -> None:
        super().__init__(f"{model}: check {check!r} failed: {message}")
        self.model = model
        self.check = check


@dataclass
class ConformanceReport:
    """Which checks ran and which were skipped (with the reason)."""

    model: str
    passed: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


def _fingerprint(ds: Dataset) -> tuple:
    parts: list[Any] = [ds.user_idx.tobytes(), ds.item_idx.tobytes(), ds.n_users, ds.n_items]
    for a in (ds.rating, ds.timestamp):
        parts.append(b"" if a is None else a.tobytes())
    for t in (ds.user_features, ds.item_features):
        parts.append(
            b""
            if t is None
            else pd.util.hash_pandas_object(t.astype(str), index=True).values.tobytes()
        )
    for k in sorted(ds.item_embeddings):
        parts.append(np.asarray(ds.item_embeddings[k]).tobytes())
    return tuple(hash(p) if isinstance(p, bytes) else p for p in parts)


def _close(a: np.ndarray, b: np.ndarray, rtol: float = 1e-5, atol: float = 1e-6) -> bool:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=False))


def _expect(cond: bool, message: str) -> None:
    if not cond:
        raise AssertionError(message)


def check_recommender(
    cls: type[Recommender],
    config: ModelConfig | dict[str, Any] | None = None,
    dataset: Dataset | None = None,
    *,
    seed: int = 0,
    skip: Iterable[str] = (),
    k: int = 5,
) -> ConformanceReport:
    """Run the shared conformance checks on model class ``cls``.

    Args:
        cls: a Recommender subclass (usually from the registry).
        config: parameters (dict or config object); keep training short (few epochs).
        dataset: defaults to :func:`fusionrec.testing.toy_dataset`.
        seed: the fit seed.
        skip: names of checks to skip (see ``CHECKS``).
        k: list length used by the recommendation checks.

    Returns a report of passed and skipped checks; raises ConformanceError at the first failure.
    """
    from fusionrec.testing.toy import toy_dataset

    unknown_skips = set(skip) - set(CHECKS)
    if unknown_skips:
        raise ValueError(
            f"unknown checks to skip: {sorted(unknown_skips)}; known: {', '.join(CHECKS)}"
        )
    ds = dataset if dataset is not None else toy_dataset()
    params: dict[str, Any] = (
        {}
        if config is None
        else (config.model_dump() if isinstance(config, ModelConfig) else dict(config))
    )
    name = getattr(cls, "name", cls.__name__)
    report = ConformanceReport(model=name)
    skipped = {c: "skipped by caller" for c in skip}
    ctx: dict[str, Any] = {}

    def run(check: str, fn: Callable[[], None], reason: str | None = None) -> None:
        if check in skipped:
            report.skipped[check] = skipped[check]
            return
        if reason is not None:
            report.skipped[check] = reason
            return
        try:
            fn()
        except ConformanceError:
            raise
        except Exception as e:  # noqa: BLE001 - every failure is reported under the check's name
            msg = str(e) or type(e).__name__
            raise ConformanceError(name, check, f"{type(e).__name__}: {msg}") from e
        report.passed.append(check)

    caps = cls.capabilities
    users = ds.users.ids
    n_users, n_items = ds.n_users, ds.n_items

    # -------------------------------------------------------------- config
    def config_roundtrip() -> None:
        cfg = cls.Config(**params)
        again = cls.Config(**cfg.model_dump())
        _expect(again == cfg, f"Config(**model_dump()) differs: {again!r} != {cfg!r}")
        json_again = cls.Config.model_validate_json(cfg.model_dump_json())
        _expect(json_again == cfg, "JSON round-trip of the config differs")
        _expect(cls(cfg.model_dump()).config == cfg, "model(dict) does not store an equal config")
        _expect(cls.Config.model_config.get("extra") == "forbid", "config must set extra='forbid'")

    def unknown_config_key() -> None:
        try:
            cls(**params, definitely_not_a_parameter=1)
        except ConfigError as e:
            _expect(
                "definitely_not_a_parameter" in str(e),
                f"ConfigError does not name the bad key: {e}",
            )
            return
        raise AssertionError("an unknown config key was accepted (expected ConfigError)")

    def unfitted_raises() -> None:
        m = cls(**params)
        try:
            m.score(users[:1])
        except ModelStateError:
            return
        raise AssertionError("score() on an unfitted model did not raise ModelStateError")

    run("config_roundtrip", config_roundtrip)
    run("unknown_config_key", unknown_config_key)
    run("unfitted_raises", unfitted_raises)

    # ----------------------------------------------------------------- fit
    def fit_returns_self() -> None:
        fp = _fingerprint(ds)
        m = cls(**params)
        out = m.fit(ds, seed=seed)
        _expect(out is m, f"fit returned {type(out).__name__}, not self")
        ctx["model"] = m
        ctx["fp"] = fp

    def dataset_not_mutated() -> None:
        _expect(_fingerprint(ds) == ctx["fp"], "fit changed the training dataset")

    run("fit_returns_self", fit_returns_self)
    if "model" not in ctx:  # everything below needs a fitted model
        ctx["model"] = cls(**params).fit(ds, seed=seed)
        ctx["fp"] = _fingerprint(ds)
    model: Recommender = ctx["model"]
    run("dataset_not_mutated", dataset_not_mutated)

    # -------------------------------------------------------------- scores
    full = np.asarray(model.score(users))
    ctx["full"] = full
    rng = np.random.default_rng(seed)
    subset = np.sort(rng.choice(n_items, size=max(1, n_items // 3), replace=False))

    def scores_shape_finite() -> None:
        _expect(
            full.shape == (n_users, n_items),
            f"score(all users) has shape {full.shape}, expected {(n_users, n_items)}",
        )
        _expect(
            np.issubdtype(full.dtype, np.floating),
            f"scores have dtype {full.dtype}, expected float",
        )
        _expect(
            bool(np.isfinite(full).all()), f"{int((~np.isfinite(full)).sum())} non-finite scores"
        )
        sub = np.asarray(model.score(users[:3], ds.items.ids[subset]))
        _expect(
            sub.shape == (3, len(subset)),
            f"score(users, items) has shape {sub.shape}, expected {(3, len(subset))}",
        )
        _expect(_close(np.asarray(model.score(users)), full), "two score() calls differ")

    def score_subset_columns() -> None:
        rows = np.arange(n_users)
        sub = np.asarray(model.score_indices(rows, subset))
        _expect(
            _close(sub, full[:, subset]),
            "score_indices(users, items) differs from the matching columns of the full scores",
        )

    def reproducible_fit() -> None:
        again = cls(**params).fit(ds, seed=seed)
        _expect(
            _close(np.asarray(again.score(users)), full),
            "two fits with the same seed give different scores",
        )

    run("scores_shape_finite", scores_shape_finite)
    run("score_subset_columns", score_subset_columns)
    run("reproducible_fit", reproducible_fit)

    # ------------------------------------------------------- recommendation
    def unknown_user() -> None:
        try:
            model.score(["__no_such_user__"])
        except UnknownIdError:
            pass
        else:
            raise AssertionError("score() of an unknown user id did not raise UnknownIdError")
        rec = model.recommend(["__no_such_user__", users[0]], k=k)
        cold = rec[rec["user_id"] == "__no_such_user__"]
        _expect(
            len(cold) == min(k, n_items),
            f"unknown user got {len(cold)} fallback items, expected {min(k, n_items)}",
        )
        _expect(
            bool(cold["fallback"].all()),
            "recommend() for an unknown user is not marked fallback=True",
        )
        _expect(
            not rec[rec["user_id"] == str(users[0])]["fallback"].any(),
            "a known user was marked fallback",
        )
        try:
            model.recommend(["__no_such_user__"], k=k, unknown="raise")
        except UnknownIdError:
            return
        raise AssertionError("recommend(unknown='raise') did not raise UnknownIdError")

    seen = ds.matrix("csr")

    def exclude_seen() -> None:
        items, _ = model.recommend_indices(np.arange(n_users), k=k)
        for u in range(n_users):
            hist = set(seen.indices[seen.indptr[u] : seen.indptr[u + 1]].tolist())
            bad = hist.intersection(items[u].tolist())
            _expect(not bad, f"user {users[u]!r} was recommended training items {sorted(bad)}")
        df = model.recommend(users[:5], k=k)
        for uid, g in df.groupby("user_id"):
            hist = set(
                ds.items.to_ids(
                    seen.indices[
                        seen.indptr[ds.users.index(uid)] : seen.indptr[ds.users.index(uid) + 1]
                    ]
                ).tolist()
            )
            _expect(
                not hist.intersection(g["item_id"]),
                f"recommend() returned a training item for {uid!r}",
            )
        everything = model.recommend(users[:3], k=n_items, exclude_seen=False)
        for uid, g in everything.groupby("user_id"):
            _expect(
                len(g) == n_items,
                f"exclude_seen=False with k=n_items gave {len(g)} items for {uid!r}, expected {n_items}",
            )

    def candidates() -> None:
        cand = ds.items.ids[subset]
        df = model.recommend(users, k=k, candidates=cand)
        _expect(
            set(df["item_id"]).issubset(set(cand.tolist())),
            "recommend() returned items outside candidates",
        )
        few = cand[:3]
        df2 = model.recommend(users[:4], k=10, candidates=few, exclude_seen=False)
        for uid, g in df2.groupby("user_id"):
            _expect(
                sorted(g["item_id"]) == sorted(few.tolist()),
                f"with exclude_seen=False {uid!r} should get exactly the 3 candidates",
            )

    def batch_equals_single() -> None:
        items_b, scores_b = model.recommend_indices(np.arange(n_users), k=k)
        for u in range(n_users):
            items_s, scores_s = model.recommend_indices(np.array([u]), k=k)
            _expect(
                _close(scores_s[0], scores_b[u]),
                f"user {users[u]!r}: single-user top-k scores differ from the batch",
            )
            # robust to ties: the single-user list must score as the batch list does
            _expect(
                _close(full[u, items_s[0]], full[u, items_b[u]]),
                f"user {users[u]!r}: single-user top-k differs from the batch",
            )
            row = np.asarray(model.score_indices(np.array([u])))[0]
            _expect(
                _close(row, full[u]),
                f"user {users[u]!r}: score of one user differs from the batch row",
            )

    run("unknown_user", unknown_user)
    run("exclude_seen", exclude_seen)
    run("candidates", candidates)
    run("batch_equals_single", batch_equals_single)

    # --------------------------------------------------------- capabilities
    def score_histories() -> None:
        hists = [seen.indices[seen.indptr[u] : seen.indptr[u + 1]] for u in range(3)] + [
            np.zeros(0, np.int64)
        ]
        sc = np.asarray(model.score_histories(hists))
        _expect(
            sc.shape == (4, n_items), f"score_histories shape {sc.shape}, expected {(4, n_items)}"
        )
        _expect(
            bool(np.isfinite(sc).all()),
            "score_histories gave non-finite scores (incl. an empty history)",
        )

    def similar_items() -> None:
        df = model.similar_items(ds.items.ids[:3], k=3)
        _expect(
            list(df.columns) == ["item_id", "similar_item_id", "rank", "score"],
            f"similar_items columns {list(df.columns)}",
        )
        _expect(
            not (df["item_id"] == df["similar_item_id"]).any(),
            "an item is listed as similar to itself",
        )
        _expect(
            bool((df.groupby("item_id").size() <= 3).all()),
            "similar_items returned more than k rows per item",
        )

    run(
        "score_histories",
        score_histories,
        None if caps.cold_start_users else "model has no cold_start_users capability",
    )
    run("similar_items", similar_items)

    # ---------------------------------------------------------- persistence
    def save_load() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = model.save(Path(tmp) / "model")
            problems = _saved_folder_problems(path)
            _expect(not problems, "saved folder: " + "; ".join(problems))
            loaded = load_model(path)
            _expect(type(loaded) is type(model), f"load_model gave {type(loaded).__name__}")
            _expect(loaded.config == model.config, "loaded config differs")
            _expect(
                _close(np.asarray(loaded.score(users)), full),
                "loaded model scores differ from the saved model's",
            )
            a = model.recommend(users[:5], k=k)
            b = loaded.recommend(users[:5], k=k)
            _expect(
                _close(a["score"].to_numpy(), b["score"].to_numpy()),
                "loaded model recommends differently",
            )
            _expect(
                isinstance(cls.load(path), cls),
                f"{cls.__name__}.load did not return a {cls.__name__}",
            )

    run("save_load", save_load)
    return report
