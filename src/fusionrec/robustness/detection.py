"""A simple statistical detector of shilling profiles, and its precision/recall.

Per user, three generic attributes of the shilling-detection literature (Chirita et al. 2005;
Burke et al. 2006), each turned into a robust z-score (median / 1.4826 MAD over all users):

- RDMA (rating deviation from mean agreement): mean over the user's items of
  ``|r_ui - mean_i| / n_i`` (fake profiles disagree most with the few ratings of unpopular items);
- share of the user's ratings at the top of the scale (a push profile rates its targets top);
- filler popularity: minus the mean log-popularity of the user's items (real users mostly rate
  popular items; filler drawn across the catalogue is far less popular);
- neighbour similarity (DegSim, Chirita et al. 2005): the mean IDF-weighted cosine similarity
  of the user's item set to their ``n_neighbours`` most similar users. Real users have coherent
  tastes and so a typical similarity; random filler makes a profile unlike everyone (too low),
  while a bandwagon of the same popular items plus the same targets makes the fake profiles
  near-copies of each other (too high). This feature counts in both directions (``|z|``).

The score is the sum of the positive z-scores of the first three and (when asked for) ``|z|``
of the fourth; users above ``threshold`` are flagged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from fusionrec.data.dataset import Dataset

__all__ = ["DetectionResult", "detect_fake_profiles", "neighbour_similarity", "precision_recall"]


@dataclass(frozen=True)
class DetectionResult:
    """``scores`` per user (higher = more suspicious) and ``flagged`` users."""

    scores: np.ndarray
    flagged: np.ndarray


def _robust_z(x: np.ndarray) -> np.ndarray:
    med = np.median(x)
    mad = 1.4826 * np.median(np.abs(x - med))
    if mad <= 1e-12:
        mad = float(np.std(x)) or 1.0
    return (x - med) / mad


def _features(ds: Dataset) -> np.ndarray:
    n_u = ds.n_users
    r = ds.rating if ds.rating is not None else np.ones(ds.n_interactions)
    cnt = np.bincount(ds.item_idx, minlength=ds.n_items).astype(float)
    i_mean = np.bincount(ds.item_idx, weights=r, minlength=ds.n_items) / np.maximum(cnt, 1)
    dev = np.abs(r - i_mean[ds.item_idx]) / np.maximum(cnt[ds.item_idx], 1)
    length = np.maximum(np.bincount(ds.user_idx, minlength=n_u).astype(float), 1)
    rdma = np.bincount(ds.user_idx, weights=dev, minlength=n_u) / length
    top = np.bincount(ds.user_idx, weights=(r >= r.max()).astype(float), minlength=n_u) / length
    pop = -np.bincount(ds.user_idx, weights=np.log1p(cnt[ds.item_idx]), minlength=n_u) / length
    return np.stack([rdma, top, pop], 1)


def neighbour_similarity(dataset: Dataset, n_neighbours: int = 10, block: int = 2048) -> np.ndarray:
    """Per user: the mean IDF-weighted cosine similarity to their ``n_neighbours`` most similar
    other users (0 for a user with no interactions). Computed in blocks of ``block`` users."""
    x = dataset.matrix("csr").astype(bool).astype(np.float64)
    pop = np.asarray(x.sum(0)).ravel()
    idf = np.log(max(x.shape[0], 1) / np.maximum(pop, 1)) + 1e-3
    xw = sp.csr_matrix(x @ sp.diags(idf))
    norm = np.sqrt(np.asarray(xw.multiply(xw).sum(1)).ravel())
    xn = sp.csr_matrix(sp.diags(1.0 / np.maximum(norm, 1e-12)) @ xw)
    k = max(1, min(n_neighbours, x.shape[0] - 1))
    out = np.zeros(x.shape[0])
    for lo in range(0, x.shape[0], block):
        s = (xn[lo : lo + block] @ xn.T).toarray()
        s[np.arange(len(s)), np.arange(lo, lo + len(s))] = -np.inf  # not one's own neighbour
        out[lo : lo + len(s)] = np.partition(s, -k, axis=1)[:, -k:].mean(1)
    out[norm == 0] = 0.0
    return out


def detect_fake_profiles(
    dataset: Dataset, threshold: float = 5.0, *, similarity: bool = False, n_neighbours: int = 10
) -> DetectionResult:
    """Score every user of ``dataset`` and flag those above ``threshold`` (see module doc);
    ``similarity=True`` adds the two-sided neighbour-similarity feature (catches bandwagon
    near-copies; costs an all-pairs user similarity, computed in blocks)."""
    z = np.column_stack([_robust_z(f) for f in _features(dataset).T])
    score = np.clip(z, 0, None).sum(1)
    if similarity:
        score = score + np.abs(_robust_z(neighbour_similarity(dataset, n_neighbours)))
    return DetectionResult(scores=score, flagged=score > threshold)


def precision_recall(flagged: np.ndarray, is_fake: np.ndarray) -> tuple[float, float]:
    """(precision, recall) of ``flagged`` against the true fake mask (precision 0 when none flagged)."""
    flagged, is_fake = np.asarray(flagged, bool), np.asarray(is_fake, bool)
    tp = float((flagged & is_fake).sum())
    prec = tp / flagged.sum() if flagged.any() else 0.0
    rec = tp / is_fake.sum() if is_fake.any() else 0.0
    return prec, rec
