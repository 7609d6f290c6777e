"""Request and response bodies of the HTTP API (kept apart from internal types)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

__all__ = [
    "ErrorBody",
    "ValidationErrorBody",
    "ValidationErrorItem",
    "ID_PATTERN",
    "Filters",
    "RecommendRequest",
    "RecommendedItem",
    "RecommendResponse",
    "SimilarItem",
    "SimilarResponse",
    "HistoryEntry",
    "HistoryResponse",
    "Contribution",
    "ExplainResponse",
    "FeedbackRequest",
    "FeedbackResponse",
    "ModelInfoOut",
    "ModelsResponse",
    "ReloadResponse",
    "UsersResponse",
]


#: User and item ids: 1-256 characters without control characters (a NUL inside or at the end
#: of an id would otherwise be cut off by numpy's fixed-width strings and name another id).
ID_PATTERN = r"^[^\x00-\x1f\x7f]+$"
ID_MAX = 256


def _json_integer(v: object) -> object:
    """JSON integers: ``48`` and ``48.0`` (JSON Schema's integer), never ``true`` or ``"48"``."""
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


JsonInt = Annotated[int, BeforeValidator(_json_integer)]


class _In(BaseModel):
    # strict: JSON booleans are not numbers, numbers are not strings
    model_config = ConfigDict(extra="forbid", strict=True, use_attribute_docstrings=True)


class ErrorBody(BaseModel):
    """Every error answer (400, 401, 403, 404, 409, 413, 431, 503)."""

    detail: str
    """What went wrong, for a person."""


class ValidationErrorItem(BaseModel):
    loc: list[str | int]
    """Where: ``["body", "k"]``, ``["query", "limit"]``, ``["path", "item_id"]``."""
    msg: str
    """What is wrong there."""
    type: str
    """Machine-readable kind (pydantic's error type)."""


class ValidationErrorBody(BaseModel):
    """A request that does not fit the schema (422)."""

    detail: str
    """All problems in one line, for a person."""
    errors: list[ValidationErrorItem] = []
    """The problems one by one."""


class Filters(_In):
    genre: str | None = Field(None, min_length=1, max_length=64, pattern=ID_PATTERN)
    """Keep only items whose genre list contains this genre (case-insensitive)."""


#: ``greedy`` or an exploration policy of ``fusionrec.serving.bandit_state.SERVICE_PARAMS``.
PolicyName = Literal["greedy", "linucb", "lints", "egreedy", "softmax", "ucb1", "ts", "random"]


class RecommendRequest(_In):
    user_id: str = Field(min_length=1, max_length=ID_MAX, pattern=ID_PATTERN)
    """External user id (unknown ids get a fallback answer)."""
    k: JsonInt = Field(10, ge=1, le=1000)
    """How many items to return, at most the service's ``max_k`` (200 by default)."""
    exclude_seen: bool = True
    """Leave out items the user already interacted with (training data and feedback events)."""
    filters: Filters | None = None
    """Optional item filters."""
    history: (
        list[Annotated[str, Field(min_length=1, max_length=ID_MAX, pattern=ID_PATTERN)]] | None
    ) = Field(None, max_length=1000)
    """Item ids for an anonymous or cold user (added to what the service knows of the user)."""
    diversity: float = Field(0.0, ge=0.0, le=1.0)
    """MMR diversity weight: 0 = pure relevance, 1 = only diversity."""
    policy: PolicyName = "greedy"
    """``greedy`` (the model's ranking) or an exploration policy that re-ranks the model's
    candidates: linucb, lints, egreedy, softmax, ucb1, ts, random."""


class RecommendedItem(BaseModel):
    item_id: str
    """External item id."""
    rank: int
    """1-based position."""
    score: float
    """Model score (higher is better; popularity count for the popular fallback)."""
    title: str | None = None
    """Display title when the catalog has one."""
    propensity: float = 1.0
    """Probability that the policy put this item at this rank given the ranks above it (1 for greedy)."""


class RecommendResponse(BaseModel):
    user_id: str
    """The requested user id."""
    items: list[RecommendedItem]
    """Recommendations, best first."""
    fallback: bool
    """True when the user was unknown and a fallback policy (popular or content) answered."""
    strategy: str
    """model, ann, history, content or popular."""
    model_version: str
    """Version of the model that answered."""
    cached: bool = False
    """True when the answer came from the cache."""
    policy: str = "greedy"
    """The policy that chose the items."""


class SimilarItem(BaseModel):
    item_id: str
    """External item id."""
    rank: int
    """1-based position."""
    score: float
    """Similarity (cosine)."""
    title: str | None = None
    """Display title."""


class SimilarResponse(BaseModel):
    item_id: str
    """The query item."""
    title: str | None = None
    """Its title."""
    strategy: Literal["ann", "exact"] = "exact"
    """``ann``: candidates from the ANN index re-ranked by exact cosine; ``exact``: all items scored."""
    items: list[SimilarItem]
    """Most similar items, best first."""


class HistoryEntry(BaseModel):
    item_id: str
    """External item id."""
    title: str | None = None
    """Display title."""
    source: Literal["train", "feedback"]
    """Where the service knows it from: the model's training data or a feedback event."""
    event: str | None = None
    """Event type for feedback entries."""
    value: float | None = None
    """Event value (e.g. the rating) for feedback entries."""
    ts: float | None = None
    """Event time (seconds since epoch) for feedback entries."""


class HistoryResponse(BaseModel):
    user_id: str
    """The user."""
    known: bool
    """Whether the model saw this user in training."""
    items: list[HistoryEntry]
    """Training items, then feedback events oldest first."""


class Contribution(BaseModel):
    item_id: str
    """A history item."""
    title: str | None = None
    """Its title."""
    weight: float
    """How much it contributed (method-dependent scale)."""


class ExplainResponse(BaseModel):
    user_id: str
    """The user."""
    item_id: str
    """The explained item."""
    title: str | None = None
    """Its title."""
    score: float | None = None
    """The model's score for the pair (None when it cannot be computed)."""
    method: str
    """history_scores (item-item weights), item_vectors (cosine), co_occurrence or none."""
    contributions: list[Contribution]
    """History items that contributed most, strongest first."""
    shared_features: dict[str, int]
    """Genres the item shares with the user's history, with how many history items have each."""


class FeedbackRequest(_In):
    user_id: str = Field(min_length=1, max_length=ID_MAX, pattern=ID_PATTERN)
    """External user id (new users are fine)."""
    item_id: str = Field(min_length=1, max_length=ID_MAX, pattern=ID_PATTERN)
    """External item id."""
    event: Literal["view", "click", "rate", "purchase"]
    """What happened."""
    value: float | None = Field(None, ge=-1e6, le=1e6, allow_inf_nan=False)
    """Optional value (a rating for ``rate``); a finite number, not a boolean."""
    ts: float | None = Field(None, ge=0, le=1e11, allow_inf_nan=False)
    """Event time in seconds since epoch (default: now); finite, before the year 5138."""
    policy: PolicyName | None = None
    """The exploration policy that showed the item (default: the one that last showed it to the user)."""
    propensity: float | None = Field(None, gt=0.0, le=1.0, allow_inf_nan=False)
    """The item's propensity as the recommend answer gave it (default: the remembered one)."""
    reward: float | None = Field(None, ge=-1e6, le=1e6, allow_inf_nan=False)
    """Bandit reward (default: click/purchase 1, view 0, rate 1 when value >= 4 else 0)."""


class FeedbackResponse(BaseModel):
    id: int
    """Id of the stored event."""
    stored: bool = True
    """Always true: the event was committed before this answer."""
    bandit: bool = False
    """True when the event was stored as bandit feedback (propensity and reward) and learned from."""


class ModelInfoOut(BaseModel):
    name: str
    """Registered model name."""
    version: str
    """Version being served."""
    path: str | None
    """Folder it was loaded from."""
    n_users: int
    """Users known to the model."""
    n_items: int
    """Items known to the model."""
    loaded_at: float
    """Load time (seconds since epoch)."""
    ann: str | None
    """ANN index kind (ivf, hnsw, flat) or None when scoring is exhaustive."""
    params: dict
    """Model hyper-parameters."""


class ModelsResponse(BaseModel):
    serving: ModelInfoOut
    """The model answering requests now."""
    available_versions: list[str]
    """Versions in the registry folder (empty without a registry)."""


class ReloadResponse(BaseModel):
    version: str
    """Version now served."""
    previous: str | None
    """Version served before."""
    seconds: float
    """Time to build the new model state."""


class UsersResponse(BaseModel):
    users: list[str]
    """Some known user ids (for pickers)."""
    total: int
    """Number of known users."""


class ExplainDetailResponse(BaseModel):
    """Every explanation that applies to the model (``fusionrec.explain.report``); a section
    that does not apply is absent and ``skipped`` says why."""

    model: str
    """The model's registered name."""
    user_id: str | None = None
    """The user (absent for an anonymous history)."""
    item: dict[str, object]
    """The explained item (item_id, title)."""
    score: float | None = None
    """The model's score for the pair."""
    history_size: int
    """History items the explanation read."""
    contributions: dict[str, object] | None = None
    """Leave-one-out contributions of history items: method and items (item_id, title, weight)."""
    attention: dict[str, object] | None = None
    """SASRec attention over the history (same shape as ``contributions``)."""
    kg_paths: list[dict[str, object]] | None = None
    """Knowledge-graph paths from history items to the item."""
    features: dict[str, object] | None = None
    """Integrated Gradients attributions to the user and item fields (deepfm, two_tower)."""
    skipped: dict[str, str] = Field(default_factory=dict)
    """Sections left out, with the reason."""
