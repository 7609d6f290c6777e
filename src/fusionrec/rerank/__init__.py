"""Re-rankers applied after scoring: diversity (MMR)."""

from fusionrec.rerank.mmr import mmr

__all__ = ["mmr"]
