"""CTR-style evaluation: held-out positives against sampled negatives, scored pairwise.

Sampled by construction (labelled so): each held-out (user, item) interaction is a positive,
and ``n_neg`` items the user has interacted with in neither ``train`` nor ``test`` (nor any
``exclude`` set) are drawn uniformly as negatives. Reports AUC, GAUC (per-user AUC weighted by
the user's number of examples) and LogLoss (when the model gives probabilities through
``predict_proba_indices``; otherwise NaN).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import scipy.sparse as sp

from fusionrec.data.dataset import Dataset
from fusionrec.data.samplers import NegativeSampler
from fusionrec.evaluation.metrics import auc, gauc, log_loss

__all__ = ["evaluate_ctr", "ctr_examples", "pair_scores"]


def ctr_examples(
    test: Dataset, train: Dataset, n_neg: int = 1, seed: int = 0, exclude: Iterable[Dataset] = ()
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(users, items, labels): unique test pairs (label 1) + ``n_neg`` sampled negatives each (label 0)."""
    if n_neg < 1:
        raise ValueError(f"n_neg must be >= 1, got {n_neg}")
    truth = test.matrix("csr")
    if truth.nnz == 0:
        raise ValueError(f"test set {test.name!r} has no interactions")
    known = truth + train.matrix("csr")
    for d in exclude:
        known = known + d.matrix("csr")
    sampler = NegativeSampler(sp.csr_matrix(known))
    pu = np.repeat(np.arange(truth.shape[0]), np.diff(truth.indptr)).astype(np.int64)
    pi = truth.indices.astype(np.int64)
    neg = sampler.sample(pu, n_neg, np.random.default_rng(seed)).ravel()
    users = np.concatenate([pu, np.repeat(pu, n_neg)])
    items = np.concatenate([pi, neg])
    labels = np.concatenate([np.ones(len(pu)), np.zeros(len(neg))]).astype(np.int8)
    return users, items, labels


def pair_scores(
    model: Any, users: np.ndarray, items: np.ndarray, batch_size: int = 1024
) -> np.ndarray:
    """One score per (user, item) pair: ``predict_proba_indices`` when the model has it, else
    gathered from ``score_indices`` rows (batched over distinct users)."""
    if hasattr(model, "predict_proba_indices"):
        return np.asarray(model.predict_proba_indices(users, items), dtype=np.float64)
    out = np.empty(len(users), dtype=np.float64)
    uniq, inv = np.unique(users, return_inverse=True)
    for s in range(0, len(uniq), batch_size):
        sel = (inv >= s) & (inv < s + batch_size)
        sc = np.asarray(model.score_indices(uniq[s : s + batch_size]))
        out[sel] = sc[inv[sel] - s, items[sel]]
    return out


def evaluate_ctr(
    model: Any,
    test: Dataset,
    train: Dataset,
    n_neg: int = 1,
    seed: int = 0,
    exclude: Iterable[Dataset] = (),
) -> dict[str, float]:
    """AUC, GAUC and LogLoss of ``model`` on ``test`` positives vs ``n_neg`` sampled negatives each.

    LogLoss is NaN unless the model has ``predict_proba_indices`` (probabilities).
    """
    users, items, labels = ctr_examples(test, train, n_neg, seed, exclude)
    scores = pair_scores(model, users, items)
    has_p = hasattr(model, "predict_proba_indices")
    return {
        "auc": auc(labels, scores),
        "gauc": gauc(users, labels, scores),
        "log_loss": log_loss(labels, scores) if has_p else float("nan"),
        "n_pos": int(labels.sum()),
        "n_neg": int((labels == 0).sum()),
    }
