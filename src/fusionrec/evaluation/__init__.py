"""Metrics (pure functions), the metric registry and the full-ranking Evaluator."""

from fusionrec.evaluation.context import EvalContext
from fusionrec.evaluation.evaluator import (
    DEFAULT_METRICS,
    EvalResult,
    Evaluator,
    Reranker,
    parse_metric,
)
from fusionrec.evaluation.metrics import TOPK_METRICS, auc, gauc, log_loss, mae, rmse
from fusionrec.evaluation.registry import METRICS, canonical_metric, validate_metric_names

__all__ = [
    "Evaluator",
    "EvalResult",
    "EvalContext",
    "Reranker",
    "parse_metric",
    "DEFAULT_METRICS",
    "TOPK_METRICS",
    "METRICS",
    "canonical_metric",
    "validate_metric_names",
    "auc",
    "gauc",
    "log_loss",
    "rmse",
    "mae",
]
