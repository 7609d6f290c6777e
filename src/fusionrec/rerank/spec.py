"""Re-ranker specs as written on the command line and in configs: ``METHOD:WEIGHT[:POOL]``.

* ``mmr:0.3`` — maximal marginal relevance, diversity weight 0.3 (relevance weight 0.7);
* ``calibrated:0.5`` — Steck (2018) calibration, λ = 0.5 between relevance and KL;
* ``fair:0.5`` — FA*IR (Zehlike et al. 2017): at every prefix at least the binomial minimum
  of long-tail items for a target proportion p = 0.5 (significance 0.1).

POOL is how many of the model's top candidates are re-ranked (default 100).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from fusionrec.errors import ConfigError

__all__ = ["RerankSpec", "parse_rerank_spec", "RERANK_METHODS", "DEFAULT_POOL"]

RERANK_METHODS = ("mmr", "calibrated", "fair")
DEFAULT_POOL = 100
Method = Literal["mmr", "calibrated", "fair"]


@dataclass(frozen=True)
class RerankSpec:
    method: Method
    weight: float
    pool: int = DEFAULT_POOL

    @property
    def text(self) -> str:
        base = f"{self.method}:{self.weight:g}"
        return base if self.pool == DEFAULT_POOL else f"{base}:{self.pool}"


def parse_rerank_spec(text: str) -> RerankSpec:
    """'mmr:0.3' -> RerankSpec('mmr', 0.3, 100); ConfigError naming the problem otherwise."""
    parts = str(text).strip().lower().split(":")
    if len(parts) not in (2, 3) or not parts[0]:
        raise ConfigError(f"re-ranker {text!r} must look like METHOD:WEIGHT[:POOL], e.g. mmr:0.3")
    method = parts[0]
    if method not in RERANK_METHODS:
        raise ConfigError(f"unknown re-ranker {method!r} in {text!r}; known: {', '.join(RERANK_METHODS)}")
    try:
        weight = float(parts[1])
    except ValueError:
        raise ConfigError(f"re-ranker {text!r}: weight {parts[1]!r} is not a number") from None
    if not 0.0 <= weight <= 1.0:
        raise ConfigError(f"re-ranker {text!r}: weight must be in [0, 1], got {weight:g}")
    pool = DEFAULT_POOL
    if len(parts) == 3:
        try:
            pool = int(parts[2])
        except ValueError:
            raise ConfigError(f"re-ranker {text!r}: pool {parts[2]!r} is not an integer") from None
        if pool < 1:
            raise ConfigError(f"re-ranker {text!r}: pool must be >= 1, got {pool}")
    return RerankSpec(method, weight, pool)  # type: ignore[arg-type]
