"""twostage: stage2_generate."""
