"""Metrics (pure functions) and the full-ranking Evaluator."""

from fusionrec.evaluation.evaluator import DEFAULT_METRICS, EvalResult, Evaluator, parse_metric
from fusionrec.evaluation.metrics import TOPK_METRICS, auc, gauc, log_loss, mae, rmse

__all__ = ["Evaluator", "EvalResult", "parse_metric", "DEFAULT_METRICS", "TOPK_METRICS", "auc", "gauc", "log_loss", "rmse", "mae"]
