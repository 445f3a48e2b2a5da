"""Layer-wise probing with the ten SentEval probing tasks."""
