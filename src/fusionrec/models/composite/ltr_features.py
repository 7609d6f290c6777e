"""Feature builders of the two-stage re-ranker (``ltr_rerank``): train-only, dense per (user, item).

Every builder takes the *training* Dataset only (the split the re-ranker is fitted on, or the
inner base part of it); none takes a validation or test split, so no held-out interaction can
reach a feature. Each returns an (n_users, n_items) float matrix (or a per-item / per-user
vector), from which ``candidate_features`` gathers the rows of the candidate pairs.

Groups (names used by ``LTRRerankConfig.features``):

* ``cf``: EASE's score (z-scored per user) and its rank among the user's unseen items,
  item popularity, user activity. Always on (the first stage).
* ``session``: EASE fitted on sessions (a user's ratings split where the gap exceeds
  ``session_gap`` seconds) instead of users: items rated in the same sitting.
* ``knn``: item-item cosine kNN and user-user cosine kNN (top ``user_neighbours``) scores.
* ``time``: the item's share of all ratings in the user's active days (smoothed over 0, 3, 14,
  60 days), the item's first rating day minus the user's last / first day, the user's span.
* ``genre``: cosine of the item's genres to the user's genre profile; release year and its
  difference from the user's mean year.
* ``kg``: cosine of the item's one-hop KG profile to the user's mean profile.
* ``text``: cosine of the item's text embedding to the user's mean text embedding.
* ``user``: age, gender and occupation codes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from fusionrec.data.dataset import Dataset
from fusionrec.errors import ConfigError

__all__ = [
    "FEATURE_GROUPS",
    "DAY",
    "inner_holdout",
    "zscore_rows",
    "ranks_unseen",
    "session_matrix",
    "time_window_share",
    "first_seen_days",
    "profile_cosine",
    "cosine_knn_scores",
    "genre_matrix",
    "release_years",
    "user_codes",
    "candidates",
    "SideInfo",
    "feature_table",
]

#: feature groups in the order their columns appear
FEATURE_GROUPS: tuple[str, ...] = ("cf", "session", "knn", "time", "genre", "kg", "text", "user")
DAY = 86_400.0
#: refuse dense (n_users, n_items) feature matrices above this many cells
MAX_CELLS = 60_000_000


def binary_matrix(train: Dataset) -> sp.csr_matrix:
    """The user-item matrix of ``train`` with every stored entry set to 1 (float32)."""
    x = train.matrix("csr").astype(np.float32)
    x.data[:] = 1.0
    return x


def check_size(train: Dataset) -> None:
    cells = train.n_users * train.n_items
    if cells > MAX_CELLS:
        raise ConfigError(
            f"ltr_rerank builds dense user x item features: {train.n_users:,} x {train.n_items:,} "
            f"= {cells:,} cells is above {MAX_CELLS:,}"
        )


def inner_holdout(train: Dataset, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Boolean mask over ``train``'s interactions: about ``fraction`` of each user's interactions,
    drawn at random (as the RS split draws), always leaving at least one in the base part.
    A user with a single interaction keeps it."""
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"holdout fraction must be in (0, 1), got {fraction}")
    u = np.asarray(train.user_idx)
    order = rng.permutation(len(u))
    order = order[np.argsort(u[order], kind="stable")]  # grouped by user, random inside
    counts = np.bincount(u, minlength=train.n_users)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    take = np.minimum(np.rint(fraction * counts).astype(np.int64), np.maximum(counts - 1, 0))
    pos = np.arange(len(u)) - np.repeat(starts, counts)
    hold = np.zeros(len(u), bool)
    hold[order[pos < np.repeat(take, counts)]] = True
    return hold


def zscore_rows(s: np.ndarray) -> np.ndarray:
    """Each row minus its mean, over its standard deviation (rows with zero spread give 0)."""
    s = np.asarray(s, dtype=np.float64)
    sd = s.std(1, keepdims=True)
    return np.divide(s - s.mean(1, keepdims=True), sd, out=np.zeros_like(s), where=sd > 1e-12)


def ranks_unseen(s: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """0-based rank of each item among the row's unseen items by descending score (seen items
    rank after every unseen one; ties by item index)."""
    m = np.where(seen, -np.inf, s)
    order = np.argsort(-m, axis=1, kind="stable")
    r = np.empty_like(order)
    np.put_along_axis(r, order, np.arange(s.shape[1])[None, :].repeat(s.shape[0], 0), 1)
    return r


def session_matrix(train: Dataset, gap: float) -> sp.csr_matrix:
    """(n_sessions, n_items) binary matrix: a user's ratings in time order, a new session where
    the gap to the previous rating exceeds ``gap`` seconds."""
    if train.timestamp is None:
        raise ConfigError("session features need interaction timestamps")
    df = pd.DataFrame({"u": train.user_idx, "i": train.item_idx, "t": train.timestamp})
    df = df.sort_values(["u", "t"], kind="stable")
    new = (df["u"].diff() != 0) | (df["t"].diff() > gap)
    sid = np.cumsum(new.to_numpy()) - 1
    n_s = int(sid.max()) + 1 if len(sid) else 0
    m = sp.csr_matrix(
        (np.ones(len(df), np.float32), (sid, df["i"].to_numpy())), shape=(n_s, train.n_items)
    )
    m.data[:] = 1.0
    return m


def _day_bins(train: Dataset) -> tuple[np.ndarray, int]:
    if train.timestamp is None:
        raise ConfigError("time features need interaction timestamps")
    t = np.asarray(train.timestamp, dtype=np.float64)
    if len(t) == 0:
        return np.zeros(0, np.int64), 1
    d = ((t - t.min()) // DAY).astype(np.int64)
    return d, int(d.max()) + 1


def time_window_share(train: Dataset, half_width_days: int) -> np.ndarray:
    """(n_users, n_items): for each user, the mean over their rating days (weighted by how many
    ratings they gave that day) of the item's share of all ratings given within
    ``half_width_days`` of that day. "How much was this item rated when this user was active."."""
    d, n_days = _day_bins(train)
    ones = np.ones(len(d))
    c = sp.csr_matrix((ones, (train.item_idx, d)), shape=(train.n_items, n_days)).toarray()
    h = sp.csr_matrix((ones, (train.user_idx, d)), shape=(train.n_users, n_days)).toarray()
    h /= np.maximum(h.sum(1, keepdims=True), 1.0)
    w = int(half_width_days)
    cs = np.cumsum(np.pad(c, ((0, 0), (w + 1, w))), axis=1)
    smooth = cs[:, 2 * w + 1 :] - cs[:, : n_days]  # sum over [day - w, day + w]
    total = smooth.sum(0)
    share = np.divide(smooth, total[None, :], out=np.zeros_like(smooth), where=total > 0)
    return h @ share.T


def first_seen_days(train: Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(item first rating - user last rating, item first rating - user first rating) in days,
    both (n_users, n_items), and the user's span in days (n_users,). Items nobody rated get
    the latest time seen (+1 day); users without ratings the earliest."""
    t = np.asarray(train.timestamp, dtype=np.float64) if train.timestamp is not None else None
    if t is None:
        raise ConfigError("time features need interaction timestamps")
    lo, hi = (float(t.min()), float(t.max())) if len(t) else (0.0, 0.0)
    first = np.full(train.n_items, hi + DAY)
    np.minimum.at(first, train.item_idx, t)
    ufirst = np.full(train.n_users, np.inf)
    np.minimum.at(ufirst, train.user_idx, t)
    ulast = np.full(train.n_users, -np.inf)
    np.maximum.at(ulast, train.user_idx, t)
    none = ~np.isfinite(ufirst)
    ufirst[none], ulast[none] = lo, lo
    return (
        (first[None, :] - ulast[:, None]) / DAY,
        (first[None, :] - ufirst[:, None]) / DAY,
        (ulast - ufirst) / DAY,
    )


def profile_cosine(x: sp.csr_matrix, item_profiles: np.ndarray | sp.spmatrix) -> np.ndarray:
    """(n_users, n_items) cosine between each item's profile row and the user's profile (the sum
    of their history's rows). Empty profiles give 0."""
    p = sp.csr_matrix(item_profiles, dtype=np.float64)
    pn = np.sqrt(np.asarray(p.multiply(p).sum(1)).ravel())
    pn_inv = np.divide(1.0, pn, out=np.zeros_like(pn), where=pn > 0)
    p = sp.diags(pn_inv) @ p
    up = sp.csr_matrix(x, dtype=np.float64) @ p
    un = np.sqrt(np.asarray(up.multiply(up).sum(1)).ravel())
    un_inv = np.divide(1.0, un, out=np.zeros_like(un), where=un > 0)
    up = sp.diags(un_inv) @ up
    return np.asarray((up @ p.T).todense())


def cosine_knn_scores(x: sp.csr_matrix, user_neighbours: int) -> tuple[np.ndarray, np.ndarray]:
    """(item-kNN, user-kNN) score matrices: x·S_item with S_item the item-item cosine (zero
    diagonal), and S_user·x with S_user the user-user cosine kept to each user's top
    ``user_neighbours`` other users."""
    x = sp.csr_matrix(x, dtype=np.float64)
    ni = np.sqrt(np.asarray(x.sum(0)).ravel())
    ni_inv = np.divide(1.0, ni, out=np.zeros_like(ni), where=ni > 0)
    si = (x.T @ x).toarray() * ni_inv[:, None] * ni_inv[None, :]
    np.fill_diagonal(si, 0.0)
    item = np.asarray(x @ si)
    nu = np.sqrt(np.asarray(x.sum(1)).ravel())
    nu_inv = np.divide(1.0, nu, out=np.zeros_like(nu), where=nu > 0)
    su = (x @ x.T).toarray() * nu_inv[:, None] * nu_inv[None, :]
    np.fill_diagonal(su, 0.0)
    k = min(int(user_neighbours), su.shape[1] - 1)
    if 0 < k < su.shape[1]:
        drop = np.argsort(-su, axis=1, kind="stable")[:, k:]
        np.put_along_axis(su, drop, 0.0, 1)
    user = np.asarray(sp.csr_matrix(su) @ x.toarray())
    return item, user


def genre_matrix(train: Dataset, field: str) -> np.ndarray | None:
    """(n_items, n_genres) 0/1 matrix from the token_seq item feature ``field``; None when the
    dataset has no such column."""
    feats = train.item_features
    if feats is None or field not in feats.columns:
        return None
    vocab: dict[str, int] = {}
    rows, cols = [], []
    for i, gs in enumerate(feats[field]):
        if isinstance(gs, str):
            gs = [gs]
        for g in [] if gs is None else gs:
            rows.append(i)
            cols.append(vocab.setdefault(str(g), len(vocab)))
    m = np.zeros((train.n_items, max(len(vocab), 1)), np.float64)
    m[rows, cols] = 1.0
    return m


def release_years(train: Dataset, field: str) -> np.ndarray | None:
    """Numeric item feature ``field`` (missing values: the median); None without the column."""
    feats = train.item_features
    if feats is None or field not in feats.columns:
        return None
    y = pd.to_numeric(feats[field], errors="coerce").to_numpy(np.float64)
    if np.isnan(y).all():
        return None
    return np.where(np.isnan(y), np.nanmedian(y), y)


def user_codes(train: Dataset, fields: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Per-user numeric columns: a numeric feature as its value, any other as category codes."""
    feats = train.user_features
    out: dict[str, np.ndarray] = {}
    if feats is None:
        return out
    for f in fields:
        if f not in feats.columns:
            continue
        num = pd.to_numeric(feats[f], errors="coerce")
        if num.notna().mean() > 0.9:
            out[f] = num.fillna(num.median()).to_numpy(np.float64)
        else:
            out[f] = pd.Categorical(feats[f].astype(str)).codes.astype(np.float64)
    return out


def candidates(first_stage: np.ndarray, seen: np.ndarray, k: int) -> np.ndarray:
    """(n_users, k) item indices: each user's top-k unseen items by ``first_stage`` score, best
    first (ties by item index); when fewer than k are unseen, seen items fill the tail."""
    k = min(int(k), first_stage.shape[1])
    m = np.where(seen, -np.inf, first_stage)
    return np.argsort(-m, axis=1, kind="stable")[:, :k]



@dataclass(frozen=True)
class SideInfo:
    """Item and user side information (no interactions): fixed for a catalogue."""

    genres: np.ndarray | None = None
    years: np.ndarray | None = None
    kg_profiles: sp.csr_matrix | None = None
    text: np.ndarray | None = None
    users: dict[str, np.ndarray] | None = None


def feature_table(
    train: Dataset,
    groups: tuple[str, ...],
    side: SideInfo,
    *,
    k: int,
    ease: Callable[[sp.csr_matrix, float], np.ndarray],
    reg_weight: float,
    session_gap: float,
    session_reg: float,
    user_neighbours: int,
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Features of each user's top-``k`` EASE candidates, built from ``train`` only.

    Returns (column names, (n_users * k, n_features) float32 matrix, (n_users, k) candidates,
    (n_users, n_items) first-stage score: EASE's, z-scored per user). Rows are user-major:
    row u*k + j is user u's j-th candidate. ``ease(x, λ)`` returns EASE's B for matrix x."""
    check_size(train)
    x = binary_matrix(train)
    seen = x.toarray() > 0
    first = zscore_rows(np.asarray(x @ ease(x, reg_weight)))
    cand = candidates(first, seen, k)
    kk = cand.shape[1]
    rows = np.repeat(np.arange(train.n_users), kk)
    cols = cand.ravel()
    names: list[str] = []
    cols_out: list[np.ndarray] = []

    def add(name: str, v: np.ndarray) -> None:
        names.append(name)
        cols_out.append(np.asarray(v)[rows, cols])

    def add_scores(name: str, s: np.ndarray) -> None:
        z = zscore_rows(s)
        add(name + "_z", z)
        add(name + "_rank", ranks_unseen(z, seen))

    add("ease_z", first)
    names.append("ease_rank")
    cols_out.append(np.tile(np.arange(kk), train.n_users))  # candidates are in EASE's order
    n_u = max(train.n_users, 1)
    pop = np.asarray(x.sum(0)).ravel()
    names.append("pop")
    cols_out.append((pop / n_u)[cols])
    names.append("user_activity")
    cols_out.append(np.asarray(x.sum(1)).ravel()[rows])
    if "session" in groups:
        add_scores("session_ease", np.asarray(x @ ease(session_matrix(train, session_gap), session_reg)))
    if "knn" in groups:
        item, user = cosine_knn_scores(x, user_neighbours)
        add_scores("itemknn", item)
        add_scores("userknn", user)
    if "time" in groups:
        for w in (0, 3, 14, 60):
            add(f"time_share_{w}d", time_window_share(train, w))
        after_last, after_first, span = first_seen_days(train)
        add("item_first_minus_user_last", after_last)
        add("item_first_minus_user_first", after_first)
        names.append("user_span_days")
        cols_out.append(span[rows])
    if "genre" in groups:
        if side.genres is not None:
            add("genre_cosine", profile_cosine(x, side.genres))
        if side.years is not None:
            act = np.maximum(np.asarray(x.sum(1)).ravel(), 1.0)
            mean_year = np.asarray(x @ side.years).ravel() / act
            names += ["release_year", "year_minus_user_mean"]
            cols_out += [side.years[cols], side.years[cols] - mean_year[rows]]
    if "kg" in groups and side.kg_profiles is not None:
        add("kg_cosine", profile_cosine(x, side.kg_profiles))
    if "text" in groups and side.text is not None:
        add("text_cosine", profile_cosine(x, side.text))
    if "user" in groups and side.users:
        for f, v in side.users.items():
            names.append(f"user_{f}")
            cols_out.append(v[rows])
    table = np.column_stack(cols_out).astype(np.float32)
    return names, table, cand, first
