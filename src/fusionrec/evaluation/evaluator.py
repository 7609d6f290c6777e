"""Full-ranking evaluation: every user with held-out items is scored against all items.

Training items (and, when testing, validation items) are masked out of each ranking.
Metrics follow RecBole 1.2.1 (see ``metrics``). Work is batched over users and vectorised.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import scipy.sparse as sp

from fusionrec.data.dataset import Dataset
from fusionrec.evaluation.metrics import TOPK_METRICS
from fusionrec.ranking import mask_seen, topk

__all__ = ["Evaluator", "EvalResult", "parse_metric", "DEFAULT_METRICS"]

DEFAULT_METRICS = ("recall", "ndcg", "mrr", "hit", "precision")


class Scorer(Protocol):
    def score_indices(self, user_idx: np.ndarray, item_idx: np.ndarray | None = None) -> np.ndarray: ...


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

    @property
    def n_users(self) -> int:
        return len(self.users)

    def slice(self, user_mask: np.ndarray) -> dict[str, float]:
        """Means over the evaluated users selected by a boolean mask over *all* user indices."""
        sel = np.asarray(user_mask, bool)[self.users]
        if not sel.any():
            return {k: float("nan") for k in self.metrics} | {"users": 0}
        return {k: float(v[sel].mean()) for k, v in self.per_user.items()} | {"users": int(sel.sum())}

    def __getitem__(self, key: str) -> float:
        return self.metrics[key.lower()]


class Evaluator:
    """Full-ranking top-k evaluator.

    Args:
        metrics: names from ``metrics.TOPK_METRICS``.
        ks: cut-offs, all computed from one top-max(ks) ranking.
        batch_size: users scored at once.
        keep_topk: keep every evaluated user's ranked list in the result (for export).
    """

    def __init__(
        self,
        metrics: Sequence[str] = DEFAULT_METRICS,
        ks: Sequence[int] = (10,),
        batch_size: int = 1024,
        keep_topk: bool = False,
    ) -> None:
        unknown = [m for m in metrics if m.lower() not in TOPK_METRICS]
        if unknown:
            raise ValueError(f"unknown metrics {unknown}; known: {', '.join(TOPK_METRICS)}")
        if not ks or min(ks) < 1:
            raise ValueError(f"ks must be positive cut-offs, got {list(ks)}")
        self.metrics = tuple(m.lower() for m in metrics)
        self.ks = tuple(sorted(set(int(k) for k in ks)))
        self.batch_size = batch_size
        self.keep_topk = keep_topk

    def evaluate(
        self,
        model: Scorer,
        test: Dataset,
        exclude: Iterable[Dataset | sp.csr_matrix] = (),
        users: np.ndarray | None = None,
    ) -> EvalResult:
        """Rank all items for every user with items in ``test`` (or the given ``users``)."""
        truth = test.matrix("csr")
        masks = [d.matrix("csr") if isinstance(d, Dataset) else d for d in exclude]
        n_pos_all = np.diff(truth.indptr)
        eval_users = np.flatnonzero(n_pos_all > 0)
        if users is not None:
            eval_users = np.intersect1d(eval_users, np.asarray(users, dtype=np.int64))
        kmax = max(self.ks)
        per_user: dict[str, list[np.ndarray]] = {f"{m}@{k}": [] for m in self.metrics for k in self.ks}
        keep_i, keep_s = [], []
        for s in range(0, len(eval_users), self.batch_size):
            rows = eval_users[s : s + self.batch_size]
            sc = np.array(model.score_indices(rows), dtype=np.float32, copy=True)
            if sc.shape != (len(rows), test.n_items):
                raise ValueError(f"model returned scores of shape {sc.shape}, expected {(len(rows), test.n_items)}")
            sc[np.isnan(sc)] = -np.inf
            mask_seen(sc, rows, *masks)
            idx, val = topk(sc, kmax)
            t = truth[rows]
            hits = _hits(t, idx)
            n_pos = n_pos_all[rows]
            for m in self.metrics:
                fn = TOPK_METRICS[m]
                for k in self.ks:
                    per_user[f"{m}@{k}"].append(fn(hits, n_pos, min(k, hits.shape[1])))
            if self.keep_topk:
                keep_i.append(idx)
                keep_s.append(val)
        pu = {k: (np.concatenate(v) if v else np.zeros(0)) for k, v in per_user.items()}
        means = {k: float(v.mean()) if len(v) else float("nan") for k, v in pu.items()}
        return EvalResult(
            metrics=means,
            users=eval_users,
            per_user=pu,
            topk_items=np.concatenate(keep_i) if keep_i else None,
            topk_scores=np.concatenate(keep_s) if keep_s else None,
        )

    def evaluate_split(self, model: Scorer, split: Any, stage: str = "test") -> EvalResult:
        """Evaluate on ``split.test`` masking train+valid, or on ``split.valid`` masking train."""
        if stage == "test":
            return self.evaluate(model, split.test, exclude=(split.train, split.valid))
        if stage == "valid":
            return self.evaluate(model, split.valid, exclude=(split.train,))
        raise ValueError(f"stage must be 'test' or 'valid', got {stage!r}")


def _hits(truth_rows: sp.csr_matrix, idx: np.ndarray) -> np.ndarray:
    """hits[b, j] = item idx[b, j] is in truth row b (vectorised through sorted keys)."""
    n_items = truth_rows.shape[1]
    r = np.repeat(np.arange(truth_rows.shape[0]), np.diff(truth_rows.indptr))
    keys = np.sort(r.astype(np.int64) * n_items + truth_rows.indices)
    q = (np.arange(idx.shape[0])[:, None].astype(np.int64) * n_items + idx).ravel()
    pos = np.searchsorted(keys, q)
    pos[pos >= len(keys)] = 0
    return (keys[pos] == q).reshape(idx.shape) if len(keys) else np.zeros(idx.shape, bool)
