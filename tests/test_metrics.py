"""Caption metrics: CIDEr-D and ROUGE-L against values computed by pycocoevalcap 1.2's
pure-Python scorers on a fixed example set; sacreBLEU/chrF and the vectorised chrF against
sacrebleu; coco-caption BLEU's conventions on hand-made cases. The published coco-caption demo
values are checked on the real captions in test_caption_known_answers.py."""

from __future__ import annotations

import numpy as np
import pytest
import sacrebleu

from annotate.metrics.captions import (
    CharNgrams,
    bleu_from_stats,
    bleu_stats,
    caption_scores,
    chrf_distance,
    cider_d,
    rouge_l,
)

# Pre-tokenised (lower case, no punctuation), so coco-caption's Java PTB tokenizer is not needed.
EXAMPLES = [
    ("a red circle to the left of a blue square",
     ["a red circle left of a blue square", "the red circle is left of the blue square",
      "a blue square to the right of a red circle"]),
    ("two green triangles above a yellow circle",
     ["two green triangles above one yellow circle", "a yellow circle below two green triangles"]),
    ("a blue square", ["a blue square in the middle"]),
    ("a yellow circle next to a green square and a red circle",
     ["a green square between a yellow circle and a red circle",
      "a yellow circle a green square and a red circle in a row",
      "three shapes in a row", "a yellow circle left of a green square"]),
    ("nothing", ["an empty image", "there is nothing in the picture"]),
    ("a red circle above a red circle", ["two red circles one above the other",
                                         "a red circle above another red circle"]),
    ("green triangle right of blue square below red circle",
     ["a green triangle right of a blue square", "a red circle above a blue square"]),
    ("a blue square to the left of a blue square",
     ["two blue squares side by side", "a blue square to the left of another blue square",
      "blue squares next to each other"]),
]
HYPS = [h for h, _ in EXAMPLES]
REFS = [r for _, r in EXAMPLES]
# pycocoevalcap 1.2: Cider().compute_score(gts, res) and Rouge().compute_score(gts, res).
PYCOCO_CIDER = [2.9417710731408837, 4.92192145591646, 1.8036578885257764, 2.8178295009805403,
                0.45809747108332693, 2.1414407789553827, 2.7707301653446836, 2.4029377308247692]
PYCOCO_CIDER_MEAN = 2.532298258096478
PYCOCO_ROUGE = [0.9070631970260222, 0.8571428571428571, 0.6288659793814433, 0.7942708333333333,
                0.25311203319502074, 0.8571428571428571, 0.7134502923976607, 0.9]
PYCOCO_ROUGE_MEAN = 0.7388810062023993


def test_cider_d_matches_pycocoevalcap():
    scores = cider_d(HYPS, REFS)
    np.testing.assert_allclose(scores, PYCOCO_CIDER, rtol=1e-12)
    assert scores.mean() == pytest.approx(PYCOCO_CIDER_MEAN, rel=1e-12)


def test_rouge_l_matches_pycocoevalcap():
    scores = rouge_l(HYPS, REFS)
    np.testing.assert_allclose(scores, PYCOCO_ROUGE, rtol=1e-12)
    assert scores.mean() == pytest.approx(PYCOCO_ROUGE_MEAN, rel=1e-12)


def test_tokenisation_ignores_case_and_punctuation():
    refs = [["a red circle left of a blue square"]]
    assert cider_d(["A red circle, left of a BLUE square."], refs) == pytest.approx(
        cider_d(["a red circle left of a blue square"], refs))


def test_caption_scores_sacrebleu_chrf_equal_sacrebleu_with_ragged_references():
    scores = caption_scores(HYPS, REFS, n_boot=200)
    streams = [[r[k] if k < len(r) else None for r in REFS] for k in range(4)]
    assert scores["sacrebleu"]["score"] == pytest.approx(
        sacrebleu.corpus_bleu(HYPS, streams).score)
    assert scores["chrf"]["score"] == pytest.approx(sacrebleu.corpus_chrf(HYPS, streams).score)
    assert scores["cider_d"]["score"] == pytest.approx(PYCOCO_CIDER_MEAN)
    for figures in scores.values():
        assert figures["ci_low"] <= figures["score"] <= figures["ci_high"]


def test_caption_scores_rejects_missing_references():
    with pytest.raises(ValueError, match="item 1 has no reference"):
        caption_scores(["a", "b"], [["a"], []])


def test_pairwise_chrf_equals_sacrebleu_sentence_chrf():
    rng = np.random.default_rng(0)
    words = ["red", "blue", "circle", "square", "left", "of", "a", "the", "é", "two", ""]
    texts = [" ".join(rng.choice(words, rng.integers(0, 9))) for _ in range(60)] + ["", "ab"]
    grams = CharNgrams(texts)
    left, right = rng.integers(0, len(texts), 400), rng.integers(0, len(texts), 400)
    ours = grams.chrf(left, right)
    theirs = [sacrebleu.sentence_chrf(texts[i], [texts[j]]).score
              for i, j in zip(left, right, strict=True)]
    np.testing.assert_allclose(ours, theirs, atol=1e-9)


def test_chrf_distance_is_symmetric_and_zero_on_identical_texts():
    codes, distance = chrf_distance(["a red circle", "a blue square", "a red circle", "red"])
    assert codes.tolist() == [0, 1, 0, 2]
    d = distance(np.array([0, 1, 0, 2]), np.array([1, 0, 0, 0]))
    assert d[0] == pytest.approx(d[1]) and d[2] == 0.0
    one_way = [sacrebleu.sentence_chrf("red", ["a red circle"]).score,
               sacrebleu.sentence_chrf("a red circle", ["red"]).score]
    assert d[3] == pytest.approx(1 - np.mean(one_way) / 100)


def test_grouped_bootstrap_resamples_whole_images():
    """Captions of one image are not independent; resampling images instead of captions widens
    the interval when they agree within an image, and leaves the score itself unchanged."""
    from annotate.metrics.captions import caption_scores

    hyps = ["a red circle"] * 4 + ["two blue squares"] * 4
    refs = [["a red circle"]] * 4 + [["a green triangle"]] * 4
    images = ["1", "1", "2", "2", "3", "3", "4", "4"]
    by_item = caption_scores(hyps, refs, n_boot=2000, seed=1)["rouge_l"]
    by_image = caption_scores(hyps, refs, n_boot=2000, seed=1, groups=images)["rouge_l"]
    assert by_item["score"] == by_image["score"]
    assert (by_image["ci_high"] - by_image["ci_low"]) > (by_item["ci_high"] - by_item["ci_low"])


def test_bleu_stats_use_the_closest_reference_length_shorter_on_ties():
    # hypothesis of 4 tokens; references of 3 and 5 tokens are equally close: the shorter counts
    stats = bleu_stats(["a b c d"], [["a b c", "a b c d e"]])
    assert stats[0, :2].tolist() == [4, 3]
    assert stats[0, 2:6].tolist() == [4, 3, 2, 1]  # n-grams guessed
    assert stats[0, 6:].tolist() == [4, 3, 2, 1]  # matches count against any reference


def test_bleu_from_stats_applies_coco_brevity_penalty_and_zero_guards():
    # perfect match but half the reference length: precision 1, penalty exp(1 - 2)
    stats = bleu_stats(["a b c d"], [["a b c d a b c d"]]).sum(axis=0)
    assert bleu_from_stats(stats) == pytest.approx([np.exp(-1)] * 4)
    # no 4-gram matches: BLEU-4 is (nearly) zero, not a division error
    empty = bleu_from_stats(bleu_stats(["a b"], [["a b"]]).sum(axis=0))
    assert empty[:2] == pytest.approx([1, 1]) and empty[3] < 1e-3


def test_bleu_is_case_and_punctuation_blind_like_coco_caption():
    refs = [["a red circle left of a blue square"]]
    upper = caption_scores(["A red circle, left of a BLUE square."], refs, n_boot=0)
    plain = caption_scores(["a red circle left of a blue square"], refs, n_boot=0)
    assert upper["bleu_4"]["score"] == pytest.approx(plain["bleu_4"]["score"]) == \
        pytest.approx(1.0)
