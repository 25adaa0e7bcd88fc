"""Shared statistics: the bootstrap (draws and percentile intervals) and connected components."""
