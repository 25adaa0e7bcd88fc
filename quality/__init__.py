"""twostage: quality."""
