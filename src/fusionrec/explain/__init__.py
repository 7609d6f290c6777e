"""Explanations: which of a user's items made the model recommend an item."""

from fusionrec.explain.contributions import Explanation, explain_item

__all__ = ["Explanation", "explain_item"]
