"""The rule baseline: template captions from the layout encoding, on hand-made layouts."""

import pandas as pd

from stage2_generate.baseline import SOURCE, caption_of, rule_captions


def test_templates_on_hand_made_layouts():
    assert caption_of("<empty>") == "an empty image"
    assert caption_of("green triangle x1 y1 x2 y2") == "a green triangle"
    assert caption_of("red circle x2 y5 x4 y7 ; blue square x9 y1 x12 y4") == (
        "from left to right: a red circle and a blue square")
    assert caption_of("red circle x1 y1 x2 y2 ; blue square x5 y1 x6 y2 ; red circle x9 y1 x10 y2"
                      " ; yellow circle x12 y1 x13 y2") == (
        "from left to right: two red circles, a blue square and a yellow circle")


def test_rule_captions_read_the_layout_left_to_right_for_every_image():
    images = pd.DataFrame({"image_id": ["a", "b"], "width": 100, "height": 100})
    boxes = pd.DataFrame({"image_id": ["a", "a"], "label": ["blue square", "red circle"],
                          "x0": [60.0, 5.0], "y0": [5.0, 5.0], "x1": [80.0, 20.0],
                          "y1": [20.0, 20.0]})
    captions = rule_captions(boxes, images).set_index("image_id")
    assert captions.caption.to_dict() == {
        "a": "from left to right: a red circle and a blue square", "b": "an empty image"}
    assert (captions.source == SOURCE).all()
