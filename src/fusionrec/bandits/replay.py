"""Time-ordered replay on timestamped interactions.

The interactions are cut once by time: a model is fitted on the first ``train_fraction``;
the later interactions become rounds in time order. Each round is one user's next
``n_candidates`` rated items (ordered best first by the model's score, at the time of the
first of them); the policy picks among them and the reward is the user's own rating of the pick (1 when >= ``like_threshold``).
Every candidate's rating is known, so every policy is scored on real feedback, in the
order it happened, with no simulator in between (the oracle is the best-rated candidate).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fusionrec.bandits.contexts import ContextBuilder
from fusionrec.bandits.simulator import BanditEnvironment, bpr_params, rating_extras
from fusionrec.data.dataset import Dataset
from fusionrec.errors import ConfigError
from fusionrec.models.base import Recommender

__all__ = ["time_replay"]


def time_replay(
    dataset: Dataset,
    model: Recommender | None = None,
    n_candidates: int = 10,
    train_fraction: float = 0.8,
    like_threshold: float = 4.0,
    seed: int = 0,
    model_params: dict[str, Any] | None = None,
) -> BanditEnvironment:
    """Rounds in time order after a global time cut (see module doc).

    ``model``: an embedding model fitted on the interactions before the cut (None: BPR)."""
    if dataset.timestamp is None or dataset.rating is None:
        raise ConfigError(f"dataset {dataset.name!r} needs timestamps and ratings for time-ordered replay")
    if not 0 < train_fraction < 1:
        raise ConfigError(f"train_fraction must lie in (0, 1), got {train_fraction}")
    order = np.argsort(dataset.timestamp, kind="stable")
    cut = int(len(order) * train_fraction)
    train = dataset.with_interactions(order[:cut], name=f"{dataset.name}:before-cut")
    future = order[cut:]
    if model is None:
        from fusionrec.models.classic.bpr import BPR

        model = BPR(**(model_params or bpr_params())).fit(train, seed=seed)
    u_all, i_all = dataset.user_idx[future], dataset.item_idx[future]
    r_all, t_all = dataset.rating[future], dataset.timestamp[future]
    rounds_u, rounds_i, rounds_r, rounds_t = [], [], [], []
    by_user = np.argsort(u_all, kind="stable")  # stable: keeps time order within a user
    bounds = np.flatnonzero(np.diff(u_all[by_user])) + 1
    for rows in np.split(by_user, bounds):
        for s in range(0, len(rows) - n_candidates + 1, n_candidates):
            chunk = rows[s : s + n_candidates]
            u = u_all[chunk[0]]
            # candidates best first by the model, so "greedy" is the model's own ranking
            rank = np.argsort(-model.score_indices(np.array([u]), i_all[chunk])[0], kind="stable")
            chunk = chunk[rank]
            rounds_u.append(u)
            rounds_i.append(i_all[chunk])
            rounds_r.append(r_all[chunk])
            rounds_t.append(t_all[rows[s]])
    if not rounds_u:
        raise ConfigError(f"no user has {n_candidates} interactions after the time cut; lower n_candidates")
    users = np.asarray(rounds_u)
    cand = np.stack(rounds_i).astype(np.int64)
    probs = (np.stack(rounds_r) >= like_threshold).astype(np.float64)
    item_mean, user_mean = rating_extras(train)
    flat_u = np.repeat(users, n_candidates)
    builder = ContextBuilder.from_model(model, item_extra=item_mean, user_extra=user_mean).standardized(flat_u, cand.reshape(-1))
    contexts = builder.pairs(flat_u, cand.reshape(-1)).reshape(len(users), n_candidates, -1)
    time_order = np.argsort(np.asarray(rounds_t), kind="stable")
    info = {
        "dataset": dataset.name,
        "model": model.name,
        "rounds": len(users),
        "n_candidates": n_candidates,
        "dim": builder.dim,
        "train_interactions": cut,
        "oracle_value": float(probs.max(axis=1).mean()),
        "model_top_value": float(probs[:, 0].mean()),
        "mean_candidate_value": float(probs.mean()),
    }
    return BanditEnvironment(cand, contexts, probs, n_arms=dataset.n_items, order=time_order, info=info)
