"""Data model, loaders, fetching and splits."""

from fusionrec.data.dataset import FEATURE_TYPES, Dataset, KnowledgeGraph
from fusionrec.data.idmap import IdMap
from fusionrec.data.splits import PROTOCOLS, Split, split

__all__ = ["Dataset", "IdMap", "KnowledgeGraph", "FEATURE_TYPES", "Split", "split", "PROTOCOLS"]
