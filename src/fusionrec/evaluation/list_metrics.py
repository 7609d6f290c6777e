"""Beyond-accuracy (``list``) and fairness (``fair``) metrics of every evaluated user's ranked
list, computed once after ranking (see ``registry`` for the names and keys)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from fusionrec.evaluation import beyond, diversity, fairness
from fusionrec.evaluation.context import EvalContext
from fusionrec.evaluation.metrics import ndcg
from fusionrec.evaluation.registry import METRICS

__all__ = ["list_metrics", "profile_distribution", "popularity_lists", "needs_genres"]

def needs_genres(names: Sequence[str]) -> bool:
    return "calibration" in names


def profile_distribution(item_genres: sp.csr_matrix, history: sp.csr_matrix) -> np.ndarray:
    """p(g | u) from each row's history items (each item spreads weight 1 over its genres)."""
    g = sp.csr_matrix(item_genres, dtype=np.float64)
    n_g = np.asarray(g.sum(1)).ravel()
    pg = sp.diags(1.0 / np.maximum(n_g, 1)) @ g
    h = sp.csr_matrix(history, dtype=np.float64)
    h.data[:] = 1.0
    d = np.asarray((h @ pg).todense())
    tot = d.sum(1, keepdims=True)
    return np.divide(d, tot, out=np.zeros_like(d), where=tot > 0)


def popularity_lists(
    ctx: EvalContext, users: np.ndarray, k: int, exclude: Sequence[sp.csr_matrix] = ()
) -> np.ndarray:
    """The primitive recommender of serendipity: each user's k most popular unseen items."""
    from fusionrec.ranking import mask_seen, topk

    out = []
    for s in range(0, len(users), 1024):
        rows = users[s : s + 1024]
        sc = np.broadcast_to(ctx.item_count.astype(np.float32), (len(rows), ctx.n_items)).copy()
        mask_seen(sc, rows, ctx.train, *exclude)
        out.append(topk(sc, k)[0])
    return np.concatenate(out) if out else np.zeros((0, k), np.int64)


def list_metrics(
    names: Sequence[str],
    ks: Sequence[int],
    rec: np.ndarray,
    hits: np.ndarray,
    n_pos: np.ndarray,
    users: np.ndarray,
    ctx: EvalContext,
    exclude: Sequence[sp.csr_matrix] = (),
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Means (and per-user values where defined) of the ``list``/``fair`` metrics in ``names``."""
    means: dict[str, float] = {}
    per_user: dict[str, np.ndarray] = {}
    names = [n for n in names if METRICS[n].kind in ("list", "fair")]
    if not names:
        return means, per_user
    if len(users) == 0:
        return {f"{n}@{k}": float("nan") for n in names for k in ks}, per_user
    kmax = rec.shape[1]
    profile = None
    if needs_genres(names):
        if ctx.item_genres is None:
            raise ValueError("metric 'calibration' needs item genres; the training data has no genre column")
        profile = profile_distribution(ctx.item_genres, ctx.train[users])
    if "ild" in names and ctx.item_vectors is None:
        raise ValueError("metric 'ild' needs item features or embeddings; the training data has neither")
    primitive = popularity_lists(ctx, users, kmax, exclude) if "serendipity" in names else None
    for k_req in ks:
        k = min(k_req, kmax)

        def key(n: str, k: int = k_req) -> str:
            return f"{n}@{k}"

        for n in names:
            if n == "itemcoverage":
                means[key(n)] = beyond.item_coverage(rec, ctx.n_items, k)
            elif n == "giniindex":
                means[key(n)] = beyond.gini_index(rec, ctx.n_items, k)
            elif n == "shannonentropy":
                means[key(n)] = beyond.shannon_entropy(rec, k)
            elif n == "tailpercentage":
                per_user[key(n)] = beyond.tail_percentage(rec, ctx.item_count, k, ctx.tail_ratio)
            elif n == "averagepopularity":
                per_user[key(n)] = beyond.average_popularity(rec, ctx.item_count, k)
            elif n == "ild":
                assert ctx.item_vectors is not None
                per_user[key(n)] = diversity.intra_list_diversity(rec, ctx.item_vectors, k)
            elif n == "novelty":
                per_user[key(n)] = diversity.novelty(rec, ctx.item_count, ctx.n_users, k)
            elif n == "serendipity":
                assert primitive is not None
                per_user[key(n)] = diversity.serendipity(rec, hits, primitive, k)
            elif n == "calibration":
                assert ctx.item_genres is not None and profile is not None
                q = diversity.genre_distribution(ctx.item_genres, rec[:, :k])
                per_user[key(n)] = diversity.calibration_kl(profile, q)
            elif n == "exposure":
                if ctx.item_groups is None:
                    raise ValueError("metric 'exposure' needs item groups")
                shares = fairness.exposure_by_group(rec, ctx.item_groups.codes, ctx.item_groups.names, k)
                means.update({f"{key(n)}:{g}": v for g, v in shares.items()})
            elif n == "ndcg_gap":
                nd = ndcg(hits, n_pos, k)
                for attr, grp in ctx.user_groups.items():
                    gm = fairness.group_means(nd, grp.codes[users], grp.names)
                    means[f"{key(n)}:{attr}"] = fairness.group_gap(gm)
                    means.update({f"ndcg@{k_req}:{attr}={g}": v for g, v in gm.items()})
    for kk, v in per_user.items():
        means[kk] = float(v.mean())
    return means, per_user
