"""Fold stored feedback events into a dataset and fit a new model version with the same params."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from fusionrec._fsutil import replace_dir
from fusionrec.data.dataset import Dataset
from fusionrec.errors import ConfigError
from fusionrec.models.base import Recommender, load_model
from fusionrec.serving.catalog import write_catalog
from fusionrec.serving.events import EventStore

__all__ = ["fold_events", "retrain", "publish", "load_dataset_arg"]


def fold_events(dataset: Dataset, events: pd.DataFrame, name: str | None = None) -> Dataset:
    """``dataset`` with one interaction appended per event (user_id, item_id, event, value, ts).

    New users and items extend the id maps (existing indices keep their meaning); their
    feature rows are empty. ``rate`` events carry their value as rating; other events get the
    dataset's highest rating (an implicit positive) when the dataset has ratings.
    """
    if events.empty:
        return dataset
    for col in ("user_id", "item_id", "event"):
        if col not in events.columns:
            raise ConfigError(f"events table lacks column {col!r}")
    users = dataset.users.extend(events["user_id"].astype(str).to_numpy())
    items = dataset.items.extend(events["item_id"].astype(str).to_numpy())
    new_u = users.to_idx(events["user_id"].astype(str).to_numpy())
    new_i = items.to_idx(events["item_id"].astype(str).to_numpy())
    rating = None
    if dataset.rating is not None:
        top = float(np.nanmax(dataset.rating)) if len(dataset.rating) else 1.0
        vals = (
            events["value"].to_numpy(dtype=np.float64, na_value=np.nan)
            if "value" in events.columns
            else np.full(len(events), np.nan)
        )
        ev_r = np.where((events["event"].to_numpy() == "rate") & ~np.isnan(vals), vals, top)
        rating = np.concatenate([dataset.rating, ev_r])
    ts = None
    if dataset.timestamp is not None:
        ev_ts = (
            events["ts"].to_numpy(dtype=np.float64)
            if "ts" in events.columns
            else np.full(len(events), np.nanmax(dataset.timestamp))
        )
        ts = np.concatenate([dataset.timestamp, ev_ts])

    def grow(table: pd.DataFrame | None, n: int) -> pd.DataFrame | None:
        if table is None or len(table) == n:
            return table
        return table.reindex(pd.RangeIndex(n))

    kg = dataset.kg
    if kg is not None and len(kg.item_entity) < len(items):
        kg = replace(
            kg,
            item_entity=np.concatenate(
                [kg.item_entity, np.full(len(items) - len(kg.item_entity), -1)]
            ),
        )
    embs = {}
    for k, m in dataset.item_embeddings.items():
        pad = np.full((len(items) - m.shape[0], m.shape[1]), np.nan, dtype=np.float32)
        embs[k] = np.concatenate([m, pad]) if len(pad) else m
    return Dataset(
        users=users,
        items=items,
        user_idx=np.concatenate([dataset.user_idx, new_u]),
        item_idx=np.concatenate([dataset.item_idx, new_i]),
        rating=rating,
        timestamp=ts,
        user_features=grow(dataset.user_features, len(users)),
        item_features=grow(dataset.item_features, len(items)),
        user_feature_types=dataset.user_feature_types,
        item_feature_types=dataset.item_feature_types,
        text_fields=dataset.text_fields,
        kg=kg,
        item_embeddings=embs,
        name=name or f"{dataset.name}+feedback",
    )


def load_dataset_arg(name_or_path: str) -> Dataset:
    """A saved Dataset folder, or a dataset name for ``fusionrec.data.load_dataset``."""
    p = Path(name_or_path)
    if p.is_dir():
        return Dataset.load(p)
    try:
        from fusionrec.data import load_dataset  # type: ignore[attr-defined]
    except ImportError:
        raise ConfigError(
            f"{name_or_path!r} is not a dataset folder and named datasets are not available"
        ) from None
    return load_dataset(name_or_path)


def retrain(
    events_url: str,
    model_dir: str | Path,
    dataset: Dataset,
    output: str | Path,
    seed: int = 0,
    *,
    warm_start: bool = True,
    warm_epochs: int | None = None,
) -> tuple[Recommender, Dataset, int]:
    """Fit a model of the same name and params as ``model_dir`` on ``dataset`` + stored events,
    save it (with its catalog) to ``output``. Returns (model, folded dataset, number of events).

    Incremental by default: a torch model starts from the served version's weights
    (``fit(..., init_from=model_dir)``: users and items matched by id, new ones initialised
    fresh), for ``warm_epochs`` epochs when given (else the model's own ``epochs``); closed-form
    and non-torch models, or ``warm_start=False``, refit from scratch."""
    from fusionrec.models.torch_base import TorchRecommender

    old = load_model(model_dir)
    store = EventStore(events_url)
    try:
        events = store.frame()
    finally:
        store.dispose()
    folded = fold_events(dataset, events)
    if warm_start and isinstance(old, TorchRecommender):
        config = old.config
        if warm_epochs is not None:
            config = type(config)(**{**config.model_dump(), "epochs": warm_epochs})
        model = type(old)(config).fit(folded, seed=seed, init_from=model_dir)
    else:
        model = type(old)(old.config).fit(folded, seed=seed)
    publish(model, folded, output)
    return model, folded, len(events)


def publish(model: Recommender, dataset: Dataset, output: str | Path) -> Path:
    """Save ``model`` with its catalogue to ``output`` so the folder appears complete or not at
    all: everything is written into a hidden sibling (registries skip names starting with
    ``.``), then renamed into place in one step."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.", suffix=".partial", dir=output.parent))
    try:
        target = staging / "model"
        model.save(target)
        write_catalog(dataset, target)
        replace_dir(target, output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return output
