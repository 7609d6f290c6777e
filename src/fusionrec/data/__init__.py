"""Data model, loaders, fetching, filters, splits and synthetic data."""

from fusionrec.data.atomic import load_atomic, read_atomic
from fusionrec.data.dataset import FEATURE_TYPES, Dataset, KnowledgeGraph
from fusionrec.data.fetch import DATASETS, cache_home, fetch
from fusionrec.data.filters import FilterReport, dedup, filter_kcore, filter_rating
from fusionrec.data.idmap import IdMap
from fusionrec.data.loading import load_dataset
from fusionrec.data.movielens import load_movielens
from fusionrec.data.splits import PROTOCOLS, Split, split
from fusionrec.data.synthetic import SyntheticTruth, make_synthetic
from fusionrec.data.tabular import load_table

__all__ = [
    "Dataset",
    "IdMap",
    "KnowledgeGraph",
    "FEATURE_TYPES",
    "Split",
    "split",
    "PROTOCOLS",
    "load_dataset",
    "load_atomic",
    "read_atomic",
    "load_movielens",
    "load_table",
    "fetch",
    "cache_home",
    "DATASETS",
    "filter_kcore",
    "filter_rating",
    "dedup",
    "FilterReport",
    "make_synthetic",
    "SyntheticTruth",
]
