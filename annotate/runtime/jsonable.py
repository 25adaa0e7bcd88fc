"""Tables as JSON-ready rows: the one place where a missing value (NaN, NaT, pd.NA) becomes
JSON's `null`."""

from __future__ import annotations

import pandas as pd


def records(frame: pd.DataFrame) -> list[dict]:
    """The rows of `frame` as dictionaries, every missing value as None.

    Parameters
    ----------
    frame : pandas.DataFrame
        Any table.

    Returns
    -------
    list of dict
        One dictionary per row, column name to value; NaN, NaT and pd.NA become None so that
        `json.dumps` writes `null` (never the invalid token `NaN`).

    Examples
    --------
    >>> records(pd.DataFrame({"a": [1.0, float("nan")], "b": ["x", None]}))
    [{'a': 1.0, 'b': 'x'}, {'a': None, 'b': None}]
    """
    return frame.astype(object).where(frame.notna(), None).to_dict("records")
