"""twostage: stage1_detect."""
