"""Pick a setting of a fitted model on the validation split (a grid over one scalar).

Models use it for values chosen after the fit, such as the weight of cold items' borrowed
vectors (``models/text/toolkit.py``, ``models/kg/cold_items.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from fusionrec.data.dataset import Dataset

__all__ = ["best_on_validation"]


def best_on_validation(
    model: Any,
    set_value: Callable[[float], None],
    grid: Iterable[float],
    train: Dataset,
    valid: Dataset,
    metric: str = "ndcg@10",
) -> float:
    """The grid value with the best validation ``metric`` (full ranking, ``train`` items
    masked). ``set_value(v)`` applies a candidate to ``model``; ties keep the earlier value.
    The caller applies the returned value (the model is left at the last candidate)."""
    from fusionrec.evaluation.evaluator import Evaluator, parse_metric

    name, k = parse_metric(metric)
    ev = Evaluator(metrics=(name,), ks=(k,))
    best, best_v = float("-inf"), None
    for v in grid:
        set_value(v)
        score = ev.evaluate(model, valid, exclude=(train,))[metric]
        if best_v is None or score > best + 1e-9:
            best, best_v = score, v
    if best_v is None:
        raise ValueError("best_on_validation needs a non-empty grid")
    return float(best_v)
