"""``ltr_rerank``: two-stage recommender, EASE candidates re-ranked by LambdaMART (lightgbm).

Stage 1 proposes each user's top-``candidates`` unseen items by EASE. Stage 2 scores each
(user, candidate) pair with a gradient-boosted ranker (lightgbm's ``lambdarank`` objective,
LambdaMART) over the features of ``ltr_features`` (other base models' scores and ranks, item
popularity in the user's active days, first-seen times, genre / year / KG / text similarity to
the history, user demographics).

Fit, on the training split only:

1. ``folds`` times: hold out ``holdout_fraction`` of each user's training interactions at random
   (as the RS split draws), build the features from the rest, label each candidate 1 when it is
   in the held-out slice. The folds' tables are stacked into the ranker's training set.
2. Build the features again from the whole training split (the ones scoring uses).
3. Train the ranker. With a validation split, its interactions label the step-2 candidates and
   only decide when boosting stops (early stopping on NDCG@10); without one, ``rounds`` trees.

The ranker starts from ``init_weight`` x EASE's per-user z-score (lightgbm's ``init_score``),
so the trees learn a correction of EASE's order; without it the histogram binning of the score
columns loses the fine order at the top of EASE's list (measured: below EASE on its own).

Scores: candidates get the ranker's score; every other item ranks below every candidate, in EASE's
order, so the full ranking stays defined. The model is transductive: the (n_users, n_items) score
matrix is computed at fit time and saved; the fitted ranker stays on the instance as lightgbm's
text model (``ranker_text_``) and its gain per feature (``importance_``). lightgbm is imported only in ``fit``:
``pip install 'fusionrec[rerank]'``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from pydantic import Field, field_validator

from fusionrec.data.dataset import Dataset
from fusionrec.errors import ConfigError
from fusionrec.models.base import Capabilities, ModelConfig, Recommender
from fusionrec.models.classic.ease import ease_weights
from fusionrec.models.composite.ltr_features import (
    FEATURE_GROUPS,
    SideInfo,
    binary_matrix,
    feature_table,
    genre_matrix,
    inner_holdout,
    release_years,
    user_codes,
)
from fusionrec.models.registry import register

__all__ = ["LTRRerank", "LTRRerankConfig", "available_groups", "import_lightgbm"]


class LTRRerankConfig(ModelConfig):
    """Settings of ltr_rerank (defaults chosen on the ml-100k RS 8:1:1 validation split, seed 2020)."""

    candidates: int = Field(100, ge=1)
    """Candidates per user from EASE (stage 1); the ranker re-orders only these."""
    holdout_fraction: float = Field(0.15, gt=0, lt=1)
    """Share of each user's training interactions held out as the ranker's labels."""
    folds: int = Field(2, ge=1)
    """Independent random hold-outs stacked into the ranker's training table."""
    reg_weight: float = Field(500.0, gt=0)
    """EASE's λ in the first stage."""
    features: list[str] | None = None
    """Feature groups (``ltr_features.FEATURE_GROUPS``; ``cf`` is always on); None = every group
    the dataset supports. A named group the dataset cannot feed is a ConfigError."""
    session_gap: float = Field(60.0, gt=0)
    """Seconds between two ratings that start a new session (``session`` features)."""
    session_reg: float = Field(200.0, gt=0)
    """λ of the session-level EASE."""
    user_neighbours: int = Field(50, ge=1)
    """Neighbours of the user-kNN score (``knn`` features)."""
    genre_field: str = "class"
    """token_seq item feature holding genres (``genre`` features)."""
    year_field: str = "release_year"
    """Numeric item feature holding the release year (``genre`` features)."""
    user_fields: list[str] = ["age", "gender", "occupation"]
    """User features used as columns (``user`` features)."""
    text_embedding: str = "text"
    """``dataset.item_embeddings`` matrix for the ``text`` features (else the items are encoded
    with the bundled text encoder)."""
    learning_rate: float = Field(0.05, gt=0)
    """LambdaMART shrinkage."""
    num_leaves: int = Field(31, ge=2)
    """Leaves per tree."""
    min_data_in_leaf: int = Field(100, ge=1)
    """Smallest number of (user, item) rows in a leaf."""
    feature_fraction: float = Field(0.8, gt=0, le=1)
    """Share of the feature columns each tree sees."""
    max_bin: int = Field(1023, ge=2)
    """Histogram bins per feature column."""
    max_rounds: int = Field(500, ge=1)
    """Most boosting rounds with a validation split (early stopping picks fewer)."""
    early_stopping: int = Field(50, ge=1)
    """Rounds without a better validation NDCG@10 before boosting stops."""
    rounds: int = Field(30, ge=1)
    """Boosting rounds without a validation split."""
    init_weight: float = Field(1.0, ge=0)
    """The ranker starts from this times EASE's per-user z-score (0 = from zero)."""

    @field_validator("features")
    @classmethod
    def _known_groups(cls, v: list[str] | None) -> list[str] | None:
        if v is not None:
            bad = sorted(set(v) - set(FEATURE_GROUPS))
            if bad:
                raise ValueError(f"unknown feature group(s) {bad}; known: {list(FEATURE_GROUPS)}")
        return v


def import_lightgbm() -> Any:
    """lightgbm, or a ConfigError naming the extra that installs it."""
    try:
        import lightgbm
    except ImportError as e:
        raise ConfigError(
            "ltr_rerank needs lightgbm: pip install 'fusionrec[rerank]' (or pip install lightgbm)"
        ) from e
    return lightgbm


def available_groups(dataset: Dataset, c: LTRRerankConfig) -> dict[str, str | None]:
    """Each feature group -> None when ``dataset`` can feed it, else why not."""
    feats = dataset.item_features
    has_genre = feats is not None and (c.genre_field in feats.columns or c.year_field in feats.columns)
    users = dataset.user_features
    has_text = bool(dataset.text_fields) or c.text_embedding in dataset.item_embeddings
    no_ts = "the dataset has no timestamps"
    return {
        "cf": None,
        "session": None if dataset.timestamp is not None else no_ts,
        "knn": None,
        "time": None if dataset.timestamp is not None else no_ts,
        "genre": None if has_genre else f"no item feature {c.genre_field!r} or {c.year_field!r}",
        "kg": None if dataset.kg is not None else "the dataset has no knowledge graph",
        "text": None if has_text else "the dataset has no item text",
        "user": None
        if users is not None and any(f in users.columns for f in c.user_fields)
        else f"no user feature among {c.user_fields}",
    }


def _ease(x: sp.csr_matrix, lam: float) -> np.ndarray:
    """EASE's B for a binary matrix x (rows: users or sessions)."""
    return ease_weights((x.T @ x).toarray(), lam, dtype="float64")


@register("ltr_rerank")
class LTRRerank(Recommender):
    """EASE candidates re-ranked by LambdaMART over train-only features (see the module doc)."""

    Config = LTRRerankConfig
    capabilities = Capabilities()
    config: LTRRerankConfig

    def groups(self, dataset: Dataset) -> tuple[str, ...]:
        """The feature groups this fit uses on ``dataset`` (ConfigError for a named group the
        dataset cannot feed)."""
        av = available_groups(dataset, self.config)
        if self.config.features is None:
            wanted = [g for g in FEATURE_GROUPS if av[g] is None]
            if "text" in wanted and self.config.text_embedding not in dataset.item_embeddings:
                try:  # encoding needs the lm extra; the default leaves text out without it
                    import sentence_transformers  # noqa: F401
                except ImportError:
                    wanted.remove("text")
            return tuple(wanted)
        bad = {g: av[g] for g in self.config.features if av[g] is not None}
        if bad:
            raise ConfigError(
                "ltr_rerank cannot build feature group(s) "
                + "; ".join(f"{g!r}: {why}" for g, why in bad.items())
            )
        return tuple(g for g in FEATURE_GROUPS if g == "cf" or g in self.config.features)

    def _side(self, dataset: Dataset, groups: tuple[str, ...]) -> SideInfo:
        c = self.config
        kg = text = None
        if "kg" in groups and dataset.kg is not None:
            from fusionrec.models.kg.cold_items import kg_item_profiles

            kg = kg_item_profiles(dataset.kg, dataset.n_items)
        if "text" in groups:
            from fusionrec.models.text.toolkit import text_features

            if c.text_embedding in dataset.item_embeddings:
                raw = np.asarray(dataset.item_embeddings[c.text_embedding], dtype=np.float32)
            else:
                from fusionrec.encoders.text import DEFAULT_TEXT_MODEL, encode_items

                raw = encode_items(dataset, DEFAULT_TEXT_MODEL, None)
            text = text_features(raw)[0]
        return SideInfo(
            genres=genre_matrix(dataset, c.genre_field) if "genre" in groups else None,
            years=release_years(dataset, c.year_field) if "genre" in groups else None,
            kg_profiles=kg,
            text=text,
            users=user_codes(dataset, tuple(c.user_fields)) if "user" in groups else None,
        )

    def features(
        self, train: Dataset, groups: tuple[str, ...], side: SideInfo
    ) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
        """``ltr_features.feature_table`` at this model's settings (train-only by signature)."""
        c = self.config
        return feature_table(
            train,
            groups,
            side,
            k=c.candidates,
            ease=_ease,
            reg_weight=c.reg_weight,
            session_gap=c.session_gap,
            session_reg=c.session_reg,
            user_neighbours=c.user_neighbours,
        )

    def _fit(self, dataset: Dataset, valid: Dataset | None, seed: int) -> None:
        lgb = import_lightgbm()
        c = self.config
        groups = self.groups(dataset)
        side = self._side(dataset, groups)
        rng = np.random.default_rng(seed)
        tables, labels, group_sizes = [], [], []
        names: list[str] = []
        for _ in range(c.folds):
            hold = inner_holdout(dataset, c.holdout_fraction, rng)
            base = dataset.with_interactions(~hold)
            names, table, cand, _ = self.features(base, groups, side)
            lab = binary_matrix(dataset.with_interactions(hold))
            keep = np.asarray(lab.sum(1)).ravel() > 0  # a group without a positive teaches nothing
            y = np.asarray(lab[np.repeat(np.arange(dataset.n_users), cand.shape[1]), cand.ravel()]).ravel()
            row_keep = np.repeat(keep, cand.shape[1])
            tables.append(table[row_keep])
            labels.append(y[row_keep])
            group_sizes += [cand.shape[1]] * int(keep.sum())
        x_train = np.vstack(tables)
        y_train = np.concatenate(labels)
        if y_train.sum() == 0:
            raise ConfigError("ltr_rerank: no held-out item is among the candidates; raise candidates")
        _, full, cand, first = self.features(dataset, groups, side)
        k = cand.shape[1]
        zcol = names.index("ease_z")
        params = {
            "objective": "lambdarank",
            "learning_rate": c.learning_rate,
            "num_leaves": c.num_leaves,
            "min_data_in_leaf": c.min_data_in_leaf,
            "feature_fraction": c.feature_fraction,
            "max_bin": c.max_bin,
            "eval_at": [10],
            "num_threads": self.fit_options_.cpu_threads or 1,
            "seed": int(seed),
            "deterministic": True,
            "force_row_wise": True,
            "verbose": -1,
        }
        dtrain = lgb.Dataset(
            x_train, y_train, group=group_sizes, feature_name=names,
            init_score=c.init_weight * x_train[:, zcol], params={"max_bin": c.max_bin},
        )
        use_valid = valid is not None and valid.n_interactions > 0
        if use_valid:
            v = binary_matrix(valid)
            vkeep = np.asarray(v.sum(1)).ravel() > 0
            rk = np.repeat(vkeep, k)
            yv = np.asarray(v[np.repeat(np.arange(dataset.n_users), k), cand.ravel()]).ravel()[rk]
            dvalid = lgb.Dataset(
                full[rk], yv, group=[k] * int(vkeep.sum()), reference=dtrain,
                init_score=c.init_weight * full[rk, zcol],
            )
            booster = lgb.train(
                params, dtrain, c.max_rounds, valid_sets=[dvalid],
                callbacks=[lgb.early_stopping(c.early_stopping, verbose=False)],
            )
            self.rounds_ = int(booster.best_iteration) or c.max_rounds
        else:
            booster = lgb.train(params, dtrain, c.rounds)
            self.rounds_ = c.rounds
        pred = booster.predict(full, num_iteration=self.rounds_) + c.init_weight * full[:, zcol]
        self.feature_names_ = names
        self.groups_ = groups
        self.importance_ = dict(zip(names, booster.feature_importance("gain").tolist(), strict=True))
        self.ranker_text_ = booster.model_to_string(num_iteration=self.rounds_)
        self.scores_ = _full_scores(first, cand, pred.reshape(cand.shape))

    def score_indices(self, user_idx: np.ndarray, item_idx: np.ndarray | None = None) -> np.ndarray:
        s = self.scores_[np.asarray(user_idx, dtype=np.int64)]
        return s if item_idx is None else s[:, np.asarray(item_idx, dtype=np.int64)]

    def _get_state(self) -> dict[str, np.ndarray]:
        return {"scores": self.scores_}

    def _set_state(self, state: dict[str, np.ndarray]) -> None:
        self.scores_ = np.asarray(state["scores"], dtype=np.float32)



def _full_scores(first: np.ndarray, cand: np.ndarray, ranked: np.ndarray) -> np.ndarray:
    """(n_users, n_items) float32: candidates get their ranker score; every other item a score
    below the user's lowest candidate, in first-stage order (squashed into one unit)."""
    lo = ranked.min(1, keepdims=True)
    f = np.asarray(first, dtype=np.float64)
    fmin, fmax = f.min(1, keepdims=True), f.max(1, keepdims=True)
    spread = np.where(fmax - fmin > 0, fmax - fmin, 1.0)
    out = lo - 2.0 + (f - fmin) / spread  # in [lo - 2, lo - 1]
    np.put_along_axis(out, cand, ranked, 1)
    return out.astype(np.float32)
