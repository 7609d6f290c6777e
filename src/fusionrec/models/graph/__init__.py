"""Graph models over the user-item graph: LightGCN."""
