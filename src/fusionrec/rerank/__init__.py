"""Re-rankers applied after any model's scores: diversity (MMR), calibration (Steck 2018) and
fair exposure (FA*IR), offline (``Evaluator(reranker=...)``) and in ``recommend_reranked``."""

from fusionrec.rerank.calibrated import calibrated_rerank
from fusionrec.rerank.fair import fair_minimums, fair_rerank
from fusionrec.rerank.mmr import mmr
from fusionrec.rerank.reranker import ListReranker, make_reranker, recommend_reranked
from fusionrec.rerank.spec import RERANK_METHODS, RerankSpec, parse_rerank_spec

__all__ = [
    "mmr",
    "calibrated_rerank",
    "fair_rerank",
    "fair_minimums",
    "ListReranker",
    "make_reranker",
    "recommend_reranked",
    "RerankSpec",
    "parse_rerank_spec",
    "RERANK_METHODS",
]
