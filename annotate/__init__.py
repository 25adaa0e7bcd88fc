"""twostage: annotate."""
