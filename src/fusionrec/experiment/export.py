"""Write a split and a model's ranked lists as CSV (``quickstart --export-dir``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fusionrec.data.splits import Split
from fusionrec.evaluation.evaluator import EvalResult
from fusionrec.models.base import Recommender

__all__ = ["export_split", "export_recommendations"]


def export_split(sp: Split, out_dir: str | Path) -> None:
    """Write ``train.csv``, ``valid.csv``, ``test.csv`` with raw ids (+ rating/timestamp)."""
    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    for name, part in (("train", sp.train), ("valid", sp.valid), ("test", sp.test)):
        df = part.interactions_frame()
        if "timestamp" in df.columns and np.all(np.mod(df["timestamp"].to_numpy(), 1) == 0):
            df["timestamp"] = df["timestamp"].astype(np.int64)
        _atomic_csv(df, d / f"{name}.csv")


def export_recommendations(model: Recommender, res: EvalResult, path: str | Path) -> None:
    """Every evaluated test user's ranked list: ``user_id,item_id,rank,score`` (rank 1 best)."""
    if res.topk_items is None or res.topk_scores is None:
        raise ValueError("evaluation was run without keep_topk=True")
    k = res.topk_items.shape[1]
    users = np.repeat(res.users, k)
    items = res.topk_items.ravel()
    scores = res.topk_scores.ravel()
    ok = np.isfinite(scores)
    df = pd.DataFrame(
        {
            "user_id": model.users_.to_ids(users[ok]),
            "item_id": model.items_.to_ids(items[ok]),
            "rank": np.tile(np.arange(1, k + 1), len(res.users))[ok],
            "score": scores[ok],
        }
    )
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    _atomic_csv(df, Path(path))


def _atomic_csv(df: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    df.to_csv(tmp, index=False)
    tmp.replace(path)
