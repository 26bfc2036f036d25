"""Synthetic chest-CT phantoms with nodules of every kind, for training, evaluation and the demo."""
