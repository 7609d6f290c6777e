"""Sequential models over a user's ordered history: SASRec."""
