import numpy as np
import pandas as pd
import pytest

from annotate.tables.schema import COLUMNS, SchemaError, TableSet, coerce, empty, find_violations


def test_empty_tables_have_the_design_columns():
    assert list(empty("images").columns) == ["image_id", "path", "width", "height", "group_id",
                                             "sha256"]
    assert list(empty("boxes").columns) == ["image_id", "annotator", "object_id", "label", "x0",
                                            "y0", "x1", "y1", "score", "source"]
    assert list(empty("annotations").columns) == ["image_id", "annotator", "source", "lead_time",
                                                  "created_at"]
    assert list(empty("captions").columns) == ["image_id", "annotator", "caption", "source"]


def test_coerce_sets_dtypes_and_fills_nullable_columns():
    boxes = coerce("boxes", [{"image_id": 7, "annotator": "a", "object_id": 1, "label": "cat",
                              "x0": "1", "y0": 2, "x1": 3, "y1": 4, "source": "human"}])
    assert boxes.image_id.iloc[0] == "7" and boxes.object_id.iloc[0] == "1"
    assert boxes.x0.dtype == np.float64 and np.isnan(boxes.score.iloc[0])
    ann = coerce("annotations", [{"image_id": "1", "annotator": "a", "source": "human",
                                  "created_at": "2026-01-01T10:00:00.123456Z"}])
    assert str(ann.created_at.dtype) == "datetime64[ns, UTC]"
    assert list(coerce("images", None).columns) == list(COLUMNS["images"])


def test_coerce_names_missing_column_and_bad_values():
    with pytest.raises(SchemaError, match=r"boxes: missing column.*'label'"):
        coerce("boxes", [{"image_id": "1", "annotator": "a", "object_id": "1", "x0": 1, "y0": 1,
                          "x1": 2, "y1": 2, "source": "human"}])
    with pytest.raises(SchemaError, match="images: bad width"):
        coerce("images", [{"image_id": "1", "path": "p", "width": 10.5, "height": 3}])


def test_valid_set_passes(small_set):
    assert find_violations(small_set) == []
    assert small_set.validate() is small_set


def _boxes(ts, **change):
    b = ts.boxes.copy()
    for col, value in change.items():
        b.loc[0, col] = value
    return TableSet(ts.images, ts.annotations, b, ts.captions, ts.labels)


@pytest.mark.parametrize(("mutate", "rule"), [
    (lambda ts: _boxes(ts, x1=200.0), "boxes: box outside the image"),
    (lambda ts: _boxes(ts, x0=-5.0), "boxes: box outside the image"),
    (lambda ts: _boxes(ts, x1=10.0), "x1 <= x0"),
    (lambda ts: _boxes(ts, label="horse"), "unknown label"),
    (lambda ts: _boxes(ts, y0=np.nan), "NaN or infinite coordinate"),
    (lambda ts: _boxes(ts, image_id="99"), "box for an image that does not exist"),
    (lambda ts: _boxes(ts, annotator="zed"), "human rows but no annotations row"),
    (lambda ts: _boxes(ts, score=0.5), "human boxes carry no score"),
    (lambda ts: _boxes(ts, source="people"), "source must be"),
    (lambda ts: TableSet(ts.images, ts.annotations,
                         pd.concat([ts.boxes, ts.boxes.iloc[:1]]), ts.captions, ts.labels),
     "duplicate object_id"),
    (lambda ts: TableSet(pd.concat([ts.images, ts.images.iloc[:1]]), ts.annotations, ts.boxes,
                         ts.captions, ts.labels), "duplicate image_id"),
    (lambda ts: TableSet(ts.images.assign(width=[-1, 80]), ts.annotations, ts.boxes.iloc[1:],
                         ts.captions, ts.labels), "width and height must be positive"),
    (lambda ts: TableSet(ts.images, ts.annotations, ts.boxes,
                         ts.captions.assign(annotator="b2"), ts.labels),
     "captions: annotator with human rows but no annotations row"),
    (lambda ts: TableSet(ts.images, pd.concat([ts.annotations, ts.annotations.iloc[:1]]),
                         ts.boxes, ts.captions, ts.labels), "duplicate (image_id, annotator"),
    (lambda ts: TableSet(ts.images.assign(split=["train", "holdout"]), ts.annotations, ts.boxes,
                         ts.captions, ts.labels), "split must be one of"),
])
def test_each_rule_is_enforced_and_named(small_set, mutate, rule):
    with pytest.raises(SchemaError) as err:
        mutate(small_set).validate()
    assert rule in str(err.value)
    assert "rows [" in str(err.value)  # names the offending rows and their ids


def test_model_score_out_of_range_and_nan_allowed(small_set):
    b = small_set.boxes.copy()
    b.loc[2, "score"] = 1.5
    with pytest.raises(SchemaError, match=r"model score must be in \[0, 1\]"):
        TableSet(small_set.images, small_set.annotations, b, small_set.captions,
                 small_set.labels).validate()
    b.loc[2, "score"] = np.nan
    TableSet(small_set.images, small_set.annotations, b, small_set.captions,
             small_set.labels).validate()


def test_error_lists_every_violation_with_ids(small_set):
    ts = _boxes(small_set, label="horse", x1=500.0)
    with pytest.raises(SchemaError) as err:
        ts.validate()
    assert len(err.value.violations) == 2
    assert "image_id=1, annotator=a, object_id=r1" in str(err.value)


def test_validation_is_vectorised_on_a_million_boxes(small_set):
    n = 1_000_000
    boxes = pd.DataFrame({"image_id": "1", "annotator": "model:v", "object_id": np.arange(n),
                          "label": "cat", "x0": 1.0, "y0": 1.0, "x1": 2.0, "y1": 2.0,
                          "score": 0.5, "source": "model:v"})
    ts = TableSet(small_set.images, small_set.annotations, boxes, labels=["cat"])
    assert find_violations(ts) == []


def test_isin_on_arrow_text_and_on_objects_agree_and_never_match_nulls():
    from annotate.tables.schema import TEXT, isin
    values = ["a", None, "b", "7", "c"]
    for column in (pd.Series(values, dtype=TEXT), pd.Series(values, dtype=object)):
        assert isin(column, ["a", "7", None]).tolist() == [True, False, False, True, False]
        assert isin(column, pd.Series(["c"], dtype=TEXT)).tolist() == [False] * 4 + [True]
        assert isin(column, []).tolist() == [False] * 5
    assert isin(pd.Series(["7"], dtype=TEXT), [7]).tolist() == [False]  # 7 is not "7"


def test_row_keys_are_equal_exactly_for_equal_rows_across_frames():
    from annotate.tables.schema import TEXT, duplicated_rows, row_keys
    a = pd.DataFrame({"image": pd.Series(["x", "x", None, None, "y"], dtype=TEXT),
                      "who": ["p", "p", "q", "q", "p"]})
    b = pd.DataFrame({"image": pd.Series(["y", None, "z"], dtype=TEXT), "who": ["p", "q", "p"]})
    ka, kb = row_keys([a, b], ["image", "who"])
    assert ka[0] == ka[1] and ka[2] == ka[3] and len({ka[0], ka[2], ka[4]}) == 3
    assert kb[0] == ka[4] and kb[1] == ka[2] and kb[2] not in set(ka)
    assert duplicated_rows(a, ["image", "who"]).tolist() == [True, True, True, True, False]
    assert duplicated_rows(a, ["image", "who"]).tolist() == a.duplicated(keep=False).tolist()


def test_positions_finds_the_first_occurrence_or_minus_one():
    from annotate.tables.schema import TEXT, positions
    values, of = ["b", None, "x", "a"], ["a", "b", "b", None]
    for dtype in (TEXT, object):
        assert positions(pd.Series(values, dtype=dtype),
                         pd.Series(of, dtype=dtype)).tolist() == [1, -1, -1, 0]


def test_text_column_takes_names_by_code_with_nulls():
    from annotate.tables.schema import TEXT, text_column
    column = text_column(np.array(["ann", "bob", None], dtype=object), np.array([1, -1, 0, 2, 1]))
    assert column.dtype == TEXT
    assert column.tolist() == ["bob", pd.NA, "ann", pd.NA, "bob"]
    assert text_column([], np.zeros(0, dtype=np.int64)).tolist() == []
