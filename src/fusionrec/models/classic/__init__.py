"""Classic collaborative filtering: Pop, ItemKNN, EASE, BPR-MF, and fixed-embedding serving."""
