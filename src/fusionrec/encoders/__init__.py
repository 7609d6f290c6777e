"""Pretrained encoders: text (sentence-transformers / Hugging Face) with a disk cache, item
text templates, and the fine-tuning wrapper used by LM-enhanced models.

Importing this package is light: torch and transformers load on first use.
"""

from fusionrec.encoders.templates import DEFAULT_TEMPLATE, render_item_texts, render_template
from fusionrec.encoders.text import (
    DEFAULT_TEXT_MODEL,
    EmbeddingCache,
    EncodeStats,
    TextEncoder,
    encode_items,
    encode_queries,
    encode_texts,
    load_text_encoder,
)

__all__ = [
    "DEFAULT_TEMPLATE",
    "DEFAULT_TEXT_MODEL",
    "EmbeddingCache",
    "EncodeStats",
    "TextEncoder",
    "encode_items",
    "encode_queries",
    "encode_texts",
    "load_text_encoder",
    "render_item_texts",
    "render_template",
]
