"""Deep models over ids and features: NeuMF, two-tower, DeepFM."""
