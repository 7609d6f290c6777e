"""The service's online bandit loop: exploration policies re-rank the model's candidates,
feedback stores propensity and reward and updates the policy, ADWIN watches the rewards.

``POST /v1/recommend`` with ``policy`` other than ``greedy`` asks the model (the one
recommend path, feedback history and filters included) for its top ``n_candidates`` and lets
the named policy pick the ``k`` shown, each with its propensity. The decision is remembered
per (user, item); ``POST /v1/feedback`` on a shown item stores a ``bandit_feedback`` row
beside the event (event id, policy, propensity, reward, model version) and updates the
policy at once, so the next answer reflects it. ``fusionrec bandit update --events DB``
folds the stored rows into saved policy state (``<model folder>/bandits/<policy>/``), which
the service loads on start.

Contexts (one row per candidate): the model's score of the pair, z-scored with the model's
score spread; for embedding models also ``u * v`` (elementwise, z-scored); then a bias 1.
Rewards: an explicit ``reward``, else click/purchase 1, rate ``value >= 4`` 1 (below 0),
view 0.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
from fastapi import HTTPException

from fusionrec.bandits import POLICIES, Policy, load_policy, make_policy
from fusionrec.bandits.contexts import model_vectors
from fusionrec.bandits.drift import DriftDetector
from fusionrec.errors import ConfigError, FusionRecError, ModelStateError
from fusionrec.models.base import Recommender

__all__ = [
    "BanditState",
    "ServiceContexts",
    "bandit_feedback",
    "bandits_of",
    "explore",
    "record_feedback",
    "reward_of",
    "fold_events",
    "SERVICE_PARAMS",
]

log = logging.getLogger("fusionrec.serving")

_meta = sa.MetaData()
bandit_feedback = sa.Table(
    "bandit_feedback",
    _meta,
    sa.Column("event_id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.String(256), nullable=False),
    sa.Column("item_id", sa.String(256), nullable=False),
    sa.Column("policy", sa.String(32), nullable=False),
    sa.Column("propensity", sa.Float, nullable=False),
    sa.Column("reward", sa.Float, nullable=False),
    sa.Column("model_version", sa.String(256), nullable=True),
    sa.Column("ts", sa.Float, nullable=False),
)

#: Service defaults of each exploration policy (context width and item count come from the model).
SERVICE_PARAMS: dict[str, dict[str, Any]] = {
    "linucb": {"alpha": 0.5},
    "lints": {"v": 0.1, "n_propensity_samples": 100},
    "egreedy": {"epsilon": 0.1},
    "softmax": {"temperature": 0.1},
    "ucb1": {},
    "ts": {},
    "random": {},
}
N_CANDIDATES = 50


def reward_of(event: str, value: float | None, reward: float | None = None) -> float | None:
    """The bandit reward of a feedback event (None: the event carries no reward)."""
    if reward is not None:
        return float(reward)
    if event in ("click", "purchase"):
        return 1.0
    if event == "view":
        return 0.0
    if event == "rate":
        return None if value is None else float(value >= 4.0)
    return None


class ServiceContexts:
    """Context rows of (user, items) for one model version (see the module doc)."""

    def __init__(self, model: Recommender, seed: int = 0) -> None:
        self.model = model
        rng = np.random.default_rng(seed)
        users = rng.choice(model.n_users, size=min(64, model.n_users), replace=False)
        sc = np.asarray(model.score_indices(users), np.float64)
        sc = sc[np.isfinite(sc)]
        self.mu, self.sd = float(sc.mean()), float(sc.std() or 1.0)
        try:
            U, V = model_vectors(model)
        except (ConfigError, AttributeError, NotImplementedError):
            U = V = None
        self.U, self.V = U, V
        if U is not None:
            items = rng.integers(0, model.n_items, size=len(users) * 32)
            P = U[np.repeat(users, 32)] * V[items]
            self.pmu, self.psd = P.mean(0), np.where(P.std(0) > 0, P.std(0), 1.0)
        self.dim = 2 + (0 if U is None else U.shape[1])

    def rows(self, user_idx: int | None, items: np.ndarray, scores: np.ndarray | None = None) -> np.ndarray:
        """Contexts (len(items), dim); ``user_idx`` None (unknown user) uses ``scores`` and zero vectors."""
        items = np.asarray(items, np.int64)
        if user_idx is not None:
            scores = np.asarray(self.model.score_indices(np.array([user_idx]), items)[0], np.float64)
        s = np.nan_to_num((np.asarray(scores, np.float64) - self.mu) / self.sd, posinf=0.0, neginf=0.0)
        parts = [s[:, None]]
        if self.U is not None:
            if user_idx is None:
                parts.append(np.zeros((len(items), self.U.shape[1])))
            else:
                parts.append((self.U[user_idx] * self.V[items] - self.pmu) / self.psd)
        parts.append(np.ones((len(items), 1)))
        return np.concatenate(parts, axis=1)


def new_policy(name: str, contexts: ServiceContexts, n_items: int) -> Policy:
    if name not in SERVICE_PARAMS:
        known = ", ".join(["greedy", *sorted(SERVICE_PARAMS)])
        raise ConfigError(f"unknown policy {name!r}; known policies: {known}")
    params = dict(SERVICE_PARAMS[name])
    cls = POLICIES[name]
    fields = cls.Config.model_fields
    if "dim" in fields:
        params["dim"] = contexts.dim
    if name in ("ucb1", "ts"):
        params["n_arms"] = n_items
    return make_policy(name, **params)


class BanditState:
    """Policies, remembered decisions and the drift detector of one service."""

    def __init__(self, engine: sa.Engine, registry=None, n_candidates: int = N_CANDIDATES, seed: int = 0) -> None:
        from prometheus_client import Counter, Gauge

        self.engine = engine
        _meta.create_all(engine)
        self.n_candidates = n_candidates
        self.rng = np.random.default_rng(seed)
        self.lock = threading.Lock()
        self.version: str | None = None
        self.contexts: ServiceContexts | None = None
        self.policies: dict[str, Policy] = {}
        self.decisions: OrderedDict[tuple[str, str], tuple[str, float, np.ndarray, str]] = OrderedDict()
        self.max_decisions = 100_000
        self.drift: dict[str, DriftDetector] = {}
        kw = {} if registry is None else {"registry": registry}
        self.m_updates = Counter("fusionrec_bandit_updates", "Bandit policy updates from feedback", ["policy"], **kw)
        self.m_drift = Counter("fusionrec_bandit_drift", "Drift detected on a policy's reward stream (ADWIN)", ["policy"], **kw)
        self.m_reward = Gauge("fusionrec_bandit_reward_mean", "ADWIN window mean of a policy's rewards", ["policy"], **kw)
        self.m_decisions = Counter("fusionrec_bandit_decisions", "Exploration answers", ["policy"], **kw)

    def _for_state(self, state) -> None:
        """Reset to the served model version (loading saved policy state from its folder)."""
        if state.version == self.version:
            return
        self.version = state.version
        self.contexts = ServiceContexts(state.model)
        self.policies = {}
        self.decisions.clear()
        self.folder = None if state.path is None else Path(state.path) / "bandits"

    def policy(self, state, name: str) -> Policy:
        self._for_state(state)
        pol = self.policies.get(name)
        if pol is None:
            pol = new_policy(name, self.contexts, state.model.n_items)
            saved = None if self.folder is None else self.folder / name
            if saved is not None and (saved / "policy.json").is_file():
                try:
                    loaded = load_policy(saved)
                    if loaded.config == pol.config or (loaded.dim == pol.dim and loaded.n_arms == pol.n_arms):
                        pol = loaded
                except (FusionRecError, OSError, ValueError) as e:
                    log.warning("bandit state %s not loaded: %s", saved, e)
            self.policies[name] = pol
        return pol

    def decide(self, state, name: str, user_id: str, items: np.ndarray, scores: np.ndarray, k: int):
        """(positions, propensities) of ``k`` of the candidates, remembered for feedback."""
        with self.lock:
            pol = self.policy(state, name)
            u = int(state.model.users_.to_idx([user_id], unknown="mask")[0])
            X = self.contexts.rows(u if u >= 0 else None, items, scores)
            d = pol.select(items, X if pol.contextual else None, k=k, rng=self.rng)
            ids = state.model.items_.ids
            for p, pr in zip(d.positions.tolist(), d.propensities.tolist(), strict=True):
                key = (user_id, str(ids[items[p]]))
                self.decisions[key] = (name, float(pr), X[p], state.version)
                self.decisions.move_to_end(key)
            while len(self.decisions) > self.max_decisions:
                self.decisions.popitem(last=False)
        self.m_decisions.labels(name).inc()
        return d.positions, d.propensities

    def learn(self, state, name: str, item_idx: int, reward: float, context: np.ndarray | None) -> None:
        with self.lock:
            pol = self.policy(state, name)
            pol.update(np.array([item_idx]), np.array([reward]), None if context is None or not pol.contextual else context[None, :])
            det = self.drift.setdefault(name, DriftDetector())
            ev = det.update(reward)
            mean = float(det._adwin.estimation)
        self.m_updates.labels(name).inc()
        self.m_reward.labels(name).set(mean)
        if ev is not None:
            self.m_drift.labels(name).inc()
            log.warning(
                "bandit drift: policy=%s reward mean %.3f -> %.3f after %d rewards (ADWIN, %s)",
                name, ev.mean_before, ev.mean_after, ev.n_seen, det.backend,
            )


_attach_lock = threading.Lock()


def bandits_of(svc) -> BanditState:
    """The service's :class:`BanditState`, created on first use (on the service's database)."""
    b = getattr(svc, "bandits", None)
    if b is None:
        with _attach_lock:
            b = getattr(svc, "bandits", None)
            if b is None:
                b = BanditState(svc.engine, svc.metrics.registry)
                svc.bandits = b
    return b


def explore(svc, state, req, events: list[str] | None) -> dict:
    """The ``/v1/recommend`` answer of an exploration policy (same fields as greedy's)."""
    from fusionrec.serving import engine

    b = bandits_of(svc)
    if req.policy not in SERVICE_PARAMS:
        raise HTTPException(422, f"body.policy: unknown policy {req.policy!r}; known policies: greedy, {', '.join(sorted(SERVICE_PARAMS))}")
    genre = req.filters.genre if req.filters else None
    n = max(req.k, b.n_candidates)
    try:
        ans = engine.recommend(state, req.user_id, n, req.exclude_seen, genre, req.history, events, req.diversity, svc.settings.ann_candidates)
    except ConfigError as e:
        raise HTTPException(422, str(e)) from None
    items = np.asarray(ans.items, np.int64)
    scores = np.asarray(ans.scores, np.float64)
    if len(items) == 0:
        chosen, props = np.zeros(0, np.int64), np.zeros(0)
    else:
        chosen, props = b.decide(state, req.policy, req.user_id, items, scores, min(req.k, len(items)))
    ids, title = state.model.items_.ids, state.catalog.title
    out = {
        "user_id": req.user_id,
        "items": [
            {"item_id": str(ids[items[p]]), "rank": r, "score": float(scores[p]), "title": title(int(items[p])), "propensity": float(pr)}
            for r, (p, pr) in enumerate(zip(chosen.tolist(), props.tolist(), strict=True), 1)
        ],
        "fallback": ans.fallback,
        "strategy": f"{ans.strategy}+{req.policy}",
        "model_version": state.version,
        "cached": False,
        "policy": req.policy,
    }
    svc.metrics.recommended(out["strategy"], ans.fallback)
    return out


def record_feedback(svc, event_id: int, req) -> bool:
    """Store the event's propensity and reward and update the policy; False when the event is
    no bandit feedback (no policy named and no remembered decision for the pair)."""
    b = bandits_of(svc)
    key = (req.user_id, req.item_id)
    with b.lock:
        pending = b.decisions.get(key)
    policy = getattr(req, "policy", None) or (pending[0] if pending else None)
    if policy is None or policy == "greedy":
        return False
    propensity = getattr(req, "propensity", None)
    if propensity is None and pending is not None and pending[0] == policy:
        propensity = pending[1]
    reward = reward_of(req.event, req.value, getattr(req, "reward", None))
    if propensity is None or reward is None:
        return False
    state = svc.state
    with svc.engine.begin() as conn:
        conn.execute(
            bandit_feedback.insert().values(
                event_id=int(event_id),
                user_id=req.user_id,
                item_id=req.item_id,
                policy=policy,
                propensity=float(propensity),
                reward=float(reward),
                model_version=None if state is None else state.version,
                ts=time.time() if req.ts is None else float(req.ts),
            )
        )
    if state is None or policy not in SERVICE_PARAMS:
        return True
    i = int(state.model.items_.to_idx([req.item_id], unknown="mask")[0])
    if i < 0:
        return True
    ctx = pending[2] if pending is not None and pending[0] == policy and pending[3] == state.version else None
    if ctx is None:
        with b.lock:
            b._for_state(state)
            u = int(state.model.users_.to_idx([req.user_id], unknown="mask")[0])
            ctx = b.contexts.rows(u, np.array([i]))[0] if u >= 0 else None
    if ctx is None:
        with b.lock:
            contextual = b.policy(state, policy).contextual
        if contextual:  # an unknown user without a remembered decision: stored, not learnable
            return True
    b.learn(state, policy, i, reward, ctx)
    return True


def fold_events(url_or_engine: str | sa.Engine, model: Recommender, folder: str | Path, policies: list[str] | None = None) -> dict[str, int]:
    """Fold stored bandit feedback into saved policy state under ``folder/<policy>/``.

    Each policy folds only the rows after the last event id it already holds. Contexts are
    recomputed from ``model`` (rows of users it does not know are skipped for contextual
    policies). Returns the number of rows folded per policy."""
    from fusionrec.serving.db import make_engine

    engine = make_engine(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine
    _meta.create_all(engine)
    folder = Path(folder)
    ctx = ServiceContexts(model)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(bandit_feedback).order_by(bandit_feedback.c.event_id)).all()
    names = sorted({r.policy for r in rows} & set(SERVICE_PARAMS)) if policies is None else policies
    out: dict[str, int] = {}
    for name in names:
        saved = folder / name
        pol = load_policy(saved) if (saved / "policy.json").is_file() else new_policy(name, ctx, model.n_items)
        if pol.contextual and pol.dim != ctx.dim:
            raise ModelStateError(f"{saved}: context width {pol.dim} does not fit model {model.name!r} (width {ctx.dim})")
        last = pol.last_event_id
        n = 0
        for r in rows:
            if r.policy != name or r.event_id <= last:
                continue
            i = int(model.items_.to_idx([r.item_id], unknown="mask")[0])
            u = int(model.users_.to_idx([r.user_id], unknown="mask")[0])
            if i < 0 or (pol.contextual and u < 0):
                continue
            X = ctx.rows(u, np.array([i])) if pol.contextual else None
            pol.update(np.array([i]), np.array([r.reward]), X)
            last = max(last, int(r.event_id))
            n += 1
        pol.last_event_id = last
        pol.save(saved)
        out[name] = n
    return out

