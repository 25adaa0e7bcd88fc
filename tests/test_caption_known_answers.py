"""Caption metrics against the published coco-caption demo (real COCO captions in
../shared/realdata): the Java-free PTB tokenizer equals the Stanford tokenization of all 6005
captions, and BLEU-1..4, ROUGE-L and CIDEr-D equal pycocoevalcap's published values to 4
decimals, through the library and through `annotate import` + `stage2-generate score`."""

from __future__ import annotations

import json
from collections import defaultdict

import pytest

from annotate.cli import main as annotate
from annotate.metrics.captions import bleu_stats, caption_scores
from annotate.metrics.ptb_tokenizer import ptb_tokens, tokenize
from stage2_generate.cli import main as stage2

# tylin/coco-caption cocoEvalCapDemo (pycocoevalcap 1.2, Java PTB tokenizer); see realdata README
PUBLISHED = {"bleu_1": 0.5794, "bleu_2": 0.4044, "bleu_3": 0.2785, "bleu_4": 0.1908,
             "rouge_l": 0.3963, "cider_d": 0.5998}
# BLEU's internal counts in the same demo: test length, reference length, matches for n = 1..4
PUBLISHED_COUNTS = [9893, 9855, 5732, 2510, 1043, 423]


def _demo(realdata):
    folder = realdata / "coco_captions"
    refs = json.loads((folder / "captions_val2014_fakecap1000_refs.json").read_text())
    results = json.loads((folder / "captions_val2014_fakecap_results.json").read_text())
    by_image = defaultdict(list)
    for entry in refs["annotations"]:
        by_image[entry["image_id"]].append(entry["caption"])
    return folder, by_image, results


def test_ptb_tokenizer_equals_stanford_on_all_demo_captions(realdata):
    folder, by_image, results = _demo(realdata)
    expected_refs = json.loads((folder / "refs_ptb_tokenized.json").read_text())
    expected_results = json.loads((folder / "results_ptb_tokenized.json").read_text())
    pairs = [(caption, expected)
             for image_id, captions in by_image.items()
             for caption, expected in zip(captions, expected_refs[str(image_id)], strict=True)]
    pairs += [(r["caption"], expected_results[str(r["image_id"])][0]) for r in results]
    assert len(pairs) == 6005
    wrong = [(c, e) for c, e in pairs if " ".join(tokenize(c)) != e]
    assert wrong == []


def test_caption_metrics_equal_the_published_coco_caption_demo(realdata):
    _, by_image, results = _demo(realdata)
    hyps = [r["caption"] for r in results]
    refs = [by_image[r["image_id"]] for r in results]
    scores = caption_scores(hyps, refs, n_boot=50)
    for name, value in PUBLISHED.items():
        assert round(scores[name]["score"], 4) == value, name
        assert scores[name]["ci_low"] < scores[name]["score"] < scores[name]["ci_high"]
    totals = bleu_stats(hyps, refs).sum(axis=0)
    assert totals[[0, 1, 6, 7, 8, 9]].tolist() == PUBLISHED_COUNTS


def test_score_cli_reads_a_coco_results_file(realdata, tmp_path):
    folder, _, _ = _demo(realdata)
    assert annotate(["import", str(folder / "captions_val2014_fakecap1000_refs.json"),
                     "--out", str(tmp_path / "set")]) == 0
    out = tmp_path / "scores.json"
    assert stage2(["score", str(folder / "captions_val2014_fakecap_results.json"),
                   str(tmp_path / "set"), "--n-boot", "20", "--json", str(out)]) == 0
    scores = json.loads(out.read_text())
    assert scores["n_images"] == 1000
    assert {name: round(scores[name]["score"], 4) for name in PUBLISHED} == PUBLISHED
    assert scores["tokenization"].startswith("PTB")


@pytest.mark.parametrize(("text", "tokens"), [
    ("A café in Zürich.", ["a", "café", "in", "zürich"]),
    ("It doesn't fit the dogs' bowl", ["it", "does", "n't", "fit", "the", "dogs", "bowl"]),
    ("Morgan Rd. meets First St.", ["morgan", "rd.", "meets", "first", "st."]),
    ("A cat (left) and a dog; etc.", ["a", "cat", "left", "and", "a", "dog", "etc."]),
    ("a close-up of 1,000 birds at 5:55", ["a", "close-up", "of", "1,000", "birds", "at", "5:55"]),
    ('Bonds #25 reads "Dead End" -- U.S. flag', ["bonds", "#", "25", "reads", "dead", "end",
                                                  "u.s.", "flag"]),
    ("I cannot say no.", ["i", "can", "not", "say", "no"]),
])
def test_ptb_tokenizer_rules(text, tokens):
    assert tokenize(text) == tokens


def test_ptb_tokens_keep_the_punctuation_coco_caption_then_removes():
    assert ptb_tokens('He said "hi" (twice).') == ["He", "said", "``", "hi", "''", "-LRB-",
                                                   "twice", "-RRB-", "."]
