"""Knowledge-graph and multimodal models: KG embeddings (TransE/TransR), mm_mf, CKE, KGAT."""
