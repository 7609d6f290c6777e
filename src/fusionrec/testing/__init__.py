"""Shared test helpers: model conformance checks and small synthetic datasets."""

from fusionrec.testing.conformance import (
    CHECKS,
    ConformanceError,
    ConformanceReport,
    check_recommender,
)
from fusionrec.testing.toy import TOY_GROUPS, checkerboard, toy_dataset

__all__ = [
    "check_recommender",
    "ConformanceError",
    "ConformanceReport",
    "CHECKS",
    "toy_dataset",
    "checkerboard",
    "TOY_GROUPS",
]
