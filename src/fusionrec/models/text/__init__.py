"""Models built on a pretrained language model's item-text embeddings (lm_mf, lm_ease,
lm_lightgcn, lm_sasrec, text_seq) and the text toolkit they share (``toolkit``)."""
