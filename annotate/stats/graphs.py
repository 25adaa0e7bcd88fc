"""Connected components of an undirected graph given as edge lists (scipy's csgraph), the one
helper that clusters matched boxes, duplicate images and split groups."""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components


def components(n: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Component label of each of `n` nodes joined by the edges (left[i], right[i])."""
    graph = sparse.coo_matrix((np.ones(len(left)), (np.asarray(left), np.asarray(right))),
                              shape=(n, n))
    return connected_components(graph, directed=False)[1]
