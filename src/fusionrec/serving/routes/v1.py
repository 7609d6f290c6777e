"""The /v1 read API and feedback."""

from __future__ import annotations

import json
import logging

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Path, Query
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from fusionrec.errors import ConfigError, UnknownIdError
from fusionrec.explain import explain_item
from fusionrec.explain.report import explain_recommendation
from fusionrec.serving import bandit_state, engine
from fusionrec.serving.deps import get_model_state, get_service, require_key
from fusionrec.serving.engine import ModelState, short_id
from fusionrec.serving.responses import ERRORS, ITEM_ERRORS
from fusionrec.serving.schemas import (
    ID_MAX,
    ID_PATTERN,
    Contribution,
    ExplainDetailResponse,
    ExplainResponse,
    FeedbackRequest,
    FeedbackResponse,
    HistoryEntry,
    HistoryResponse,
    ModelInfoOut,
    ModelsResponse,
    RecommendRequest,
    RecommendResponse,
    SimilarItem,
    SimilarResponse,
    UsersResponse,
)
from fusionrec.serving.service import Service

try:  # the faster encoder when installed (the serve extra brings it)
    from orjson import dumps as _dumps
except ImportError:  # pragma: no cover - orjson is optional

    def _dumps(body: dict) -> bytes:
        return json.dumps(body, separators=(",", ":"), allow_nan=False).encode()


router = APIRouter(prefix="/v1", dependencies=[Depends(require_key)])
log = logging.getLogger("fusionrec.serving")

ItemId = Path(min_length=1, max_length=ID_MAX, pattern=ID_PATTERN, description="External item id")
UserId = Path(min_length=1, max_length=ID_MAX, pattern=ID_PATTERN, description="External user id")


def _title(state: ModelState, i: int) -> str | None:
    return state.catalog.title(int(i))


def _too_large_k(k: int, max_k: int, where: str) -> HTTPException:
    return HTTPException(422, f"{where}.k: k={k} is above this service's limit max_k={max_k}")


def _heavy(state: ModelState, k: int, diversity: float, settings) -> bool:
    """Whether a recommend may cost more than a millisecond or so: MMR re-ranking, a long
    list, or exhaustive scoring of a catalogue above the ANN threshold without an index."""
    if diversity > 0 or k > 50:
        return True
    return state.ann is None and state.model.n_items > settings.ann_threshold


@router.post("/recommend", response_model=RecommendResponse, responses=ITEM_ERRORS)
async def recommend(
    req: RecommendRequest,
    svc: Service = Depends(get_service),
    state: ModelState = Depends(get_model_state),
) -> Response:
    """Top-k items for a user (known, new with feedback, or anonymous with a history)."""
    if req.k > svc.settings.max_k:
        raise _too_large_k(req.k, svc.settings.max_k, "body")
    if req.policy != "greedy":  # exploration re-ranks the model's candidates; never cached
        events = svc.cached_event_items(req.user_id)
        if events is None:
            events = await run_in_threadpool(svc.event_items, req.user_id)
        return _json(bandit_state.explore(svc, state, req, events))
    genre = req.filters.genre if req.filters else None
    key = (
        state.version,
        req.user_id,
        req.k,
        req.exclude_seen,
        genre,
        tuple(req.history or ()),
        req.diversity,
    )
    hit = svc.cache.get(key)
    if hit is not None:
        svc.metrics.cache.labels("hit").inc()
        svc.metrics.recommended(hit["strategy"], hit["fallback"])
        return _json({**hit, "cached": True})
    svc.metrics.cache.labels("miss").inc()
    events = svc.cached_event_items(req.user_id)
    if events is None:  # the database, off the event loop
        events = await run_in_threadpool(svc.event_items, req.user_id)
    args = (
        state,
        req.user_id,
        req.k,
        req.exclude_seen,
        genre,
        req.history,
        events,
        req.diversity,
        svc.settings.ann_candidates,
    )
    try:
        # a short list from the ANN index or from a catalogue at or below the ANN threshold
        # costs well under a millisecond: computed on the event loop (a thread hop would cost
        # more); anything heavier (MMR, long lists, exhaustive scoring of a large catalogue)
        # goes to the thread pool, so no request holds the loop
        if _heavy(state, req.k, req.diversity, svc.settings):
            ans = await run_in_threadpool(engine.recommend, *args)
        else:
            ans = engine.recommend(*args)
    except ConfigError as e:
        raise HTTPException(422, str(e)) from None
    except Exception as e:
        svc.record_failure(f"{type(e).__name__}: {e}")
        raise
    svc.record_success()
    ids = state.model.items_.ids
    title = state.catalog.title
    # the fields of RecommendResponse / RecommendedItem, in their order (a test holds them equal)
    out = {
        "user_id": req.user_id,
        "items": [
            {"item_id": str(ids[i]), "rank": r, "score": s, "title": title(i), "propensity": 1.0}
            for r, (i, s) in enumerate(zip(ans.items.tolist(), ans.scores.tolist(), strict=True), 1)
        ],
        "fallback": ans.fallback,
        "strategy": ans.strategy,
        "model_version": state.version,
        "cached": False,
        "policy": "greedy",
    }
    svc.cache.put(req.user_id, key, out)
    svc.metrics.recommended(ans.strategy, ans.fallback)
    if log.isEnabledFor(logging.DEBUG):
        log.debug(
            "recommend user=%s k=%d strategy=%s", svc.pseudo(req.user_id), req.k, ans.strategy
        )
    return _json(out)


def _json(body: dict) -> Response:
    """JSON of a body built to the response model (FastAPI would validate it field by field)."""
    return Response(_dumps(body), media_type="application/json")


@router.get("/items/{item_id}/similar", response_model=SimilarResponse, responses=ITEM_ERRORS)
def similar(
    item_id: str = ItemId,
    k: int = Query(10, ge=1, le=1000, description="How many items, at most the service's max_k"),
    svc: Service = Depends(get_service),
    state: ModelState = Depends(get_model_state),
) -> SimilarResponse:
    """The k items most similar to ``item_id`` (through the ANN index for large embedding models)."""
    if k > svc.settings.max_k:
        raise _too_large_k(k, svc.settings.max_k, "query")
    i = _item(state, item_id)
    idx, scores, strategy = engine.similar(state, i, k, svc.settings.ann_candidates)
    ids = state.model.items_.ids
    return SimilarResponse(
        item_id=item_id,
        title=_title(state, i),
        strategy=strategy,
        items=[
            SimilarItem(item_id=str(ids[j]), rank=r, score=float(sc), title=_title(state, j))
            for r, (j, sc) in enumerate(zip(idx, scores, strict=True), 1)
        ],
    )


def _item(state: ModelState, item_id: str) -> int:
    try:
        return state.model.items_.index(item_id)
    except UnknownIdError:
        raise HTTPException(404, f"unknown item {short_id(item_id)!r}") from None


def _train_items(state: ModelState, user_id: str) -> tuple[bool, np.ndarray]:
    u = int(state.model.users_.to_idx([user_id], unknown="mask")[0])
    if u < 0:
        return False, np.zeros(0, np.int64)
    s = state.model.seen_
    return True, s.indices[s.indptr[u] : s.indptr[u + 1]].astype(np.int64)


@router.get("/users/{user_id}/history", response_model=HistoryResponse, responses=ITEM_ERRORS)
def history(
    user_id: str = UserId,
    svc: Service = Depends(get_service),
    state: ModelState = Depends(get_model_state),
) -> HistoryResponse:
    """The user's training items and feedback events. 404 for a user the service knows nothing of."""
    known, train = _train_items(state, user_id)
    events = svc.events.for_user(user_id)
    if not known and not events:
        raise HTTPException(
            404, f"unknown user {short_id(user_id)!r} (no training data and no feedback)"
        )
    ids = state.model.items_.ids
    items = [
        HistoryEntry(item_id=str(ids[i]), title=_title(state, i), source="train") for i in train
    ]
    for e in events:
        j = int(state.model.items_.to_idx([e.item_id], unknown="mask")[0])
        items.append(
            HistoryEntry(
                item_id=e.item_id,
                title=_title(state, j) if j >= 0 else None,
                source="feedback",
                event=e.event,
                value=e.value,
                ts=e.ts,
            )
        )
    return HistoryResponse(user_id=user_id, known=known, items=items)


def _explain_inputs(
    svc: Service, state: ModelState, user_id: str, item_id: str
) -> tuple[int, bool, np.ndarray, np.ndarray]:
    """(item index, user known, the user's feedback items, train + feedback history); 404 for
    an unknown item, or a user with neither training data nor feedback."""
    i = _item(state, item_id)
    known, train = _train_items(state, user_id)
    ev = engine._known(state, svc.event_items(user_id))
    hist = np.concatenate([train, ev[~np.isin(ev, train)]])
    if not known and len(hist) == 0:
        raise HTTPException(
            404, f"unknown user {short_id(user_id)!r} (no training data and no feedback)"
        )
    return i, known, ev, hist


@router.get("/explain", response_model=ExplainResponse, responses=ITEM_ERRORS)
def explain(
    user_id: str = Query(min_length=1, max_length=ID_MAX, pattern=ID_PATTERN),
    item_id: str = Query(min_length=1, max_length=ID_MAX, pattern=ID_PATTERN),
    top: int = Query(5, ge=1, le=50),
    svc: Service = Depends(get_service),
    state: ModelState = Depends(get_model_state),
) -> ExplainResponse:
    """Why ``item_id`` suits ``user_id``: the history items that contributed most, and shared genres."""
    i, known, ev, hist = _explain_inputs(svc, state, user_id, item_id)
    model = state.model
    score = None
    try:
        if known and len(ev) == 0:
            score = float(
                model.score_indices(np.array([state.model.users_.index(user_id)]), np.array([i]))[
                    0, 0
                ]
            )
        elif model.capabilities.cold_start_users:
            score = float(np.asarray(model.score_histories([hist]))[0, i])
    except NotImplementedError:
        score = None
    ex = explain_item(model, hist, i, state.catalog.genres, top)
    ids = model.items_.ids
    return ExplainResponse(
        user_id=user_id,
        item_id=item_id,
        title=_title(state, i),
        score=score,
        method=ex.method,
        contributions=[
            Contribution(item_id=str(ids[h]), title=_title(state, h), weight=w)
            for h, w in ex.contributions
        ],
        shared_features=ex.shared_features,
    )


@router.get("/explain/detail", response_model=ExplainDetailResponse, responses=ITEM_ERRORS)
def explain_detail(
    user_id: str = Query(min_length=1, max_length=ID_MAX, pattern=ID_PATTERN),
    item_id: str = Query(min_length=1, max_length=ID_MAX, pattern=ID_PATTERN),
    top: int = Query(5, ge=1, le=20),
    svc: Service = Depends(get_service),
    state: ModelState = Depends(get_model_state),
) -> ExplainDetailResponse:
    """Every explanation that applies to the model: leave-one-out contributions of the history
    (any model), SASRec attention, Integrated Gradients feature attributions (deepfm,
    two_tower). A sync route: FastAPI runs it in the thread pool, off the event loop."""
    i, known, ev, hist = _explain_inputs(svc, state, user_id, item_id)
    model = state.model
    uidx = model.users_.index(user_id) if known else None
    # a known user without feedback: the model's own history (time-ordered for SASRec)
    out = explain_recommendation(model, uidx, i, None if known and len(ev) == 0 else hist, top=top)
    return ExplainDetailResponse(**out)


@router.post("/feedback", response_model=FeedbackResponse, status_code=201, responses=ERRORS)
async def feedback(req: FeedbackRequest, svc: Service = Depends(get_service)) -> FeedbackResponse:
    """Store an event durably; the user's next recommendation already reflects it."""
    eid = await run_in_threadpool(
        svc.add_event, req.user_id, req.item_id, req.event, req.value, req.ts
    )
    svc.metrics.feedback.labels(req.event).inc()
    log.info("feedback user=%s event=%s", svc.pseudo(req.user_id), req.event)
    learned = await run_in_threadpool(bandit_state.record_feedback, svc, eid, req)
    return FeedbackResponse(id=eid, bandit=learned)


@router.get("/models", response_model=ModelsResponse, responses=ERRORS)
def models(
    svc: Service = Depends(get_service), state: ModelState = Depends(get_model_state)
) -> ModelsResponse:
    """The model being served and the versions available in the registry."""
    from fusionrec.serving.engine import _natural_key

    versions: list[str] = []
    reg = svc.settings.registry
    if reg is not None and reg.is_dir():
        versions = sorted(
            (
                p.name
                for p in reg.iterdir()
                if p.is_dir() and not p.name.startswith(".") and (p / "config.json").is_file()
            ),
            key=_natural_key,
        )
    m = state.model
    return ModelsResponse(
        serving=ModelInfoOut(
            name=m.name,
            version=state.version,
            path=state.path,
            n_users=m.n_users,
            n_items=m.n_items,
            loaded_at=state.loaded_at,
            ann=None if state.ann is None else state.ann.kind,
            params=m.config.model_dump(mode="json"),
        ),
        available_versions=versions,
    )


@router.get("/users", response_model=UsersResponse, responses=ERRORS)
def users(
    limit: int = Query(50, ge=1, le=1000), state: ModelState = Depends(get_model_state)
) -> UsersResponse:
    """The first ``limit`` known user ids (for pickers)."""
    ids = state.model.users_.ids
    return UsersResponse(users=[str(u) for u in ids[:limit]], total=len(ids))
