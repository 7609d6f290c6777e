"""Full-ranking evaluation: every user with held-out items is scored against all items.

Training items (and, when testing, validation items) are masked out of each ranking.
Metrics follow RecBole 1.2.1 (see ``metrics``). Work is batched over users and vectorised.
Besides top-k accuracy the Evaluator computes beyond-accuracy and fairness metrics of the
ranked lists (``list_metrics``, side information from the training split through
``EvalContext``), CTR metrics on sampled negatives (``ctr``) and rating errors; every name is
in ``registry.METRICS``. An optional re-ranker reorders each user's top-``pool`` candidates
before any metric is computed.

Memory: users are scored ``batch_size`` at a time, and fewer when one block of scores would
pass ``max_batch_mib`` (scores, their masked copy and the top-k work arrays of one block are
what the loop holds), so a users x items matrix is never built. ``protocol='uni100'`` /
``'pop100'`` ranks each held-out item against sampled unseen items instead (``sampled``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import scipy.sparse as sp

from fusionrec.data.dataset import Dataset
from fusionrec.evaluation.context import EvalContext
from fusionrec.evaluation.list_metrics import list_metrics
from fusionrec.evaluation.metrics import TOPK_METRICS, mae, rmse
from fusionrec.evaluation.registry import METRICS, validate_metric_names
from fusionrec.evaluation.sampled import candidate_mask, parse_protocol, sample_negatives
from fusionrec.ranking import mask_seen, topk

__all__ = ["Evaluator", "EvalResult", "parse_metric", "DEFAULT_METRICS", "Reranker"]

DEFAULT_METRICS = ("recall", "ndcg", "mrr", "hit", "precision")


class Scorer(Protocol):
    def score_indices(self, user_idx: np.ndarray, item_idx: np.ndarray | None = None) -> np.ndarray: ...


class Reranker(Protocol):
    """Reorders candidates (``fusionrec.rerank`` builds these): ``rerank`` takes each row's
    top-``pool`` item indices and scores (best first, -inf = not a candidate) and returns the
    chosen (B, k) items and their scores (-1 / -inf where a row has fewer candidates)."""

    pool: int

    def rerank(
        self, user_idx: np.ndarray, items: np.ndarray, scores: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray]: ...


def parse_metric(name: str) -> tuple[str, int]:
    """'NDCG@10' -> ('ndcg', 10)."""
    try:
        m, k = name.lower().split("@")
        k_int = int(k)
    except ValueError:
        raise ValueError(f"metric {name!r} must look like 'ndcg@10'") from None
    if m not in TOPK_METRICS:
        raise ValueError(f"unknown metric {m!r}; known: {', '.join(TOPK_METRICS)}")
    return m, k_int


@dataclass
class EvalResult:
    """Mean metrics over evaluated users, plus per-user values for slicing."""

    metrics: dict[str, float]
    users: np.ndarray  # evaluated user indices
    per_user: dict[str, np.ndarray] = field(repr=False)
    topk_items: np.ndarray | None = field(default=None, repr=False)  # (n_users_eval, K) item indices
    topk_scores: np.ndarray | None = field(default=None, repr=False)
    protocol: str = "full"  # 'full' ranking, or the sampled protocol ('uni100', 'pop100', ...)

    @property
    def sampled(self) -> bool:
        """True when the metrics come from a sampled protocol (not comparable to full ranking)."""
        return self.protocol != "full"

    @property
    def n_users(self) -> int:
        return len(self.users)

    def slice(self, user_mask: np.ndarray) -> dict[str, float]:
        """Means over the evaluated users selected by a boolean mask over *all* user indices."""
        sel = np.asarray(user_mask, bool)[self.users]
        if not sel.any():
            return {k: float("nan") for k in self.per_user} | {"users": 0}
        return {k: float(v[sel].mean()) for k, v in self.per_user.items()} | {"users": int(sel.sum())}

    def __getitem__(self, key: str) -> float:
        return self.metrics[key.lower()]


class Evaluator:
    """Full-ranking top-k evaluator.

    Args:
        metrics: names from ``registry.METRICS`` (aliases such as ``coverage``, ``gini`` accepted).
        ks: cut-offs, all computed from one top-max(ks) ranking.
        batch_size: users scored at once.
        keep_topk: keep every evaluated user's ranked list in the result (for export).
        reranker: reorders each user's top-``reranker.pool`` before the metrics (None = off).
        ctr_negatives: sampled negatives per held-out positive for ``auc``/``gauc``/``logloss``.
        seed: seed of the CTR negative sampling.
        diversity_features: item embedding name or genre column for ``ild`` (see ``EvalContext``).
        protocol: 'full' (rank every item, seen items masked) or a sampled protocol as RecBole's
            ``mode`` strings name them: 'uniN' / 'popN' (each held-out item against N sampled
            unseen items per positive, uniform or popularity-weighted; see ``sampled``). The
            negatives are drawn from ``seed``.
        max_batch_mib: cap on one block of float32 scores (MiB); lowers the users per block
            below ``batch_size`` on large catalogues.
    """

    def __init__(
        self,
        metrics: Sequence[str] = DEFAULT_METRICS,
        ks: Sequence[int] = (10,),
        batch_size: int = 1024,
        keep_topk: bool = False,
        reranker: Reranker | None = None,
        ctr_negatives: int = 1,
        seed: int = 0,
        diversity_features: str | None = None,
        protocol: str = "full",
        max_batch_mib: float = 64.0,
    ) -> None:
        self.metrics = tuple(validate_metric_names(metrics))
        if not ks or min(ks) < 1:
            raise ValueError(f"ks must be positive cut-offs, got {list(ks)}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.ks = tuple(sorted(set(int(k) for k in ks)))
        self.batch_size = batch_size
        self.keep_topk = keep_topk
        self.reranker = reranker
        self.ctr_negatives = ctr_negatives
        self.seed = seed
        self.diversity_features = diversity_features
        self.sampled = parse_protocol(protocol)
        self.protocol = "full" if self.sampled is None else self.sampled.name
        if not max_batch_mib > 0:
            raise ValueError(f"max_batch_mib must be > 0, got {max_batch_mib}")
        self.max_batch_mib = float(max_batch_mib)

    def rows_per_block(self, n_items: int) -> int:
        """Users scored at once over ``n_items`` items: ``batch_size``, or fewer so that one
        block of float32 scores stays within ``max_batch_mib``."""
        cap = int(self.max_batch_mib * 2**20 // (4 * max(n_items, 1)))
        return max(1, min(self.batch_size, cap))

    def _kinds(self, *kinds: str) -> list[str]:
        return [m for m in self.metrics if METRICS[m].kind in kinds]

    def evaluate(
        self,
        model: Scorer,
        test: Dataset,
        exclude: Iterable[Dataset | sp.csr_matrix] = (),
        users: np.ndarray | None = None,
        context: EvalContext | None = None,
    ) -> EvalResult:
        """Rank all items for every user with items in ``test`` (or the given ``users``).

        Beyond-accuracy, fairness and CTR metrics take the training split from ``context``
        (built with ``EvalContext.from_dataset``) or, when it is None, from the first Dataset
        in ``exclude``."""
        exclude = list(exclude)
        truth = test.matrix("csr")
        masks = [d.matrix("csr") if isinstance(d, Dataset) else d for d in exclude]
        train_ds = next((d for d in exclude if isinstance(d, Dataset)), None)
        n_pos_all = np.diff(truth.indptr)
        eval_users = np.flatnonzero(n_pos_all > 0)
        if users is not None:
            eval_users = np.intersect1d(eval_users, np.asarray(users, dtype=np.int64))
        kmax = max(self.ks)
        topk_names = self._kinds("topk")
        beyond = self._kinds("list", "fair")
        if beyond and context is None:
            if train_ds is None:
                raise ValueError(
                    f"metrics {beyond} need the training split: pass context= or the training Dataset first in exclude"
                )
            context = EvalContext.from_dataset(train_ds, self.diversity_features)
        keep = self.keep_topk or bool(beyond)
        per_user: dict[str, list[np.ndarray]] = {f"{m}@{k}": [] for m in topk_names for k in self.ks}
        keep_i, keep_s, keep_h = [], [], []
        pool = kmax if self.reranker is None else max(kmax, int(self.reranker.pool))
        ranked_users = eval_users if (topk_names or keep) else eval_users[:0]  # CTR/rating only: no ranking
        if self.sampled is not None:
            # everything the user has up to this phase (RecBole's used_ids) and each item's count
            used = truth.copy()
            for m in masks:
                used = used + m
            used = used.tocsr()
            popularity = _interaction_counts(truth, masks)
            rng = np.random.default_rng(self.seed)
        step = self.rows_per_block(test.n_items)
        for s in range(0, len(ranked_users), step):
            rows = ranked_users[s : s + step]
            sc = np.array(model.score_indices(rows), dtype=np.float32, copy=True)
            if sc.shape != (len(rows), test.n_items):
                raise ValueError(f"model returned scores of shape {sc.shape}, expected {(len(rows), test.n_items)}")
            np.nan_to_num(sc, copy=False, nan=-np.inf, posinf=np.inf, neginf=-np.inf)
            if self.sampled is None:
                mask_seen(sc, rows, *masks)
            else:  # rank the held-out items against the sampled negatives only
                owner, neg = sample_negatives(self.sampled, rows, n_pos_all[rows], used, popularity, rng)
                sc[~candidate_mask(len(rows), test.n_items, truth[rows], owner, neg)] = -np.inf
            idx, val = topk(sc, pool)
            del sc
            t = truth[rows]
            if self.reranker is not None:
                idx, val = self.reranker.rerank(rows, idx, val, kmax)
                pad = idx < 0  # fewer candidates than k: padding, never a hit
                idx = np.where(pad, 0, idx)
                hits = _hits(t, idx) & ~pad
            else:
                hits = _hits(t, idx)
            n_pos = n_pos_all[rows]
            for m in topk_names:
                fn = TOPK_METRICS[m]
                for k in self.ks:
                    per_user[f"{m}@{k}"].append(fn(hits, n_pos, min(k, hits.shape[1])))
            if keep:
                keep_i.append(idx)
                keep_s.append(val)
                keep_h.append(hits)
        pu = {k: (np.concatenate(v) if v else np.zeros(0)) for k, v in per_user.items()}
        means = {k: float(v.mean()) if len(v) else float("nan") for k, v in pu.items()}
        rec = np.concatenate(keep_i) if keep_i else None
        if beyond:
            assert context is not None
            if rec is None:
                means.update({f"{m}@{k}": float("nan") for m in beyond for k in self.ks})
            else:
                lm, lpu = list_metrics(
                    beyond, self.ks, rec, np.concatenate(keep_h), n_pos_all[eval_users], eval_users, context, masks
                )
                means.update(lm)
                pu.update(lpu)
        if self._kinds("ctr"):
            means.update(self._ctr(model, test, exclude, context))
        if self._kinds("rating"):
            means.update(self._rating(model, test))
        return EvalResult(
            metrics=means,
            users=eval_users,
            per_user=pu,
            topk_items=rec if self.keep_topk else None,
            topk_scores=np.concatenate(keep_s) if (keep_s and self.keep_topk) else None,
            protocol=self.protocol,
        )

    def _ctr(
        self, model: Scorer, test: Dataset, exclude: list[Dataset | sp.csr_matrix], context: EvalContext | None
    ) -> dict[str, float]:
        from fusionrec.evaluation.ctr import evaluate_ctr

        datasets = [d for d in exclude if isinstance(d, Dataset)]
        if not datasets:
            raise ValueError("CTR metrics (auc, gauc, logloss) need the training Dataset first in exclude")
        r = evaluate_ctr(model, test, datasets[0], self.ctr_negatives, self.seed, datasets[1:])
        out = {"auc": r["auc"], "gauc": r["gauc"], "logloss": r["log_loss"]}
        return {k: v for k, v in out.items() if k in self.metrics}

    def _rating(self, model: Scorer, test: Dataset) -> dict[str, float]:
        if test.rating is None:
            raise ValueError(f"metrics rmse/mae need ratings; test set {test.name!r} has none")
        predict = getattr(model, "predict_rating_indices", None)
        if predict is None:
            name = getattr(model, "name", type(model).__name__)
            raise ValueError(f"metrics rmse/mae need a rating model; {name!r} has no predict_rating_indices")
        pred = np.asarray(predict(test.user_idx, test.item_idx), dtype=np.float64)
        out = {"rmse": rmse(test.rating, pred), "mae": mae(test.rating, pred)}
        return {k: v for k, v in out.items() if k in self.metrics}

    def evaluate_split(self, model: Scorer, split: Any, stage: str = "test") -> EvalResult:
        """Evaluate on ``split.test`` masking train+valid, or on ``split.valid`` masking train."""
        if stage == "test":
            return self.evaluate(model, split.test, exclude=(split.train, split.valid))
        if stage == "valid":
            return self.evaluate(model, split.valid, exclude=(split.train,))
        raise ValueError(f"stage must be 'test' or 'valid', got {stage!r}")


def _interaction_counts(truth: sp.csr_matrix, masks: list[sp.csr_matrix]) -> np.ndarray:
    """Interactions per item over the held-out split and every masked split (RecBole's pop
    sampler counts the interactions of all phases)."""
    counts = np.bincount(truth.indices, minlength=truth.shape[1]).astype(np.float64)
    for m in masks:
        counts += np.bincount(m.indices, minlength=truth.shape[1])
    return counts


def _hits(truth_rows: sp.csr_matrix, idx: np.ndarray) -> np.ndarray:
    """hits[b, j] = item idx[b, j] is in truth row b (vectorised through sorted keys)."""
    n_items = truth_rows.shape[1]
    r = np.repeat(np.arange(truth_rows.shape[0]), np.diff(truth_rows.indptr))
    keys = np.sort(r.astype(np.int64) * n_items + truth_rows.indices)
    q = (np.arange(idx.shape[0])[:, None].astype(np.int64) * n_items + idx).ravel()
    pos = np.searchsorted(keys, q)
    pos[pos >= len(keys)] = 0
    return (keys[pos] == q).reshape(idx.shape) if len(keys) else np.zeros(idx.shape, bool)
