"""Stage 2: tokenizer, model round trip, noise, training, overfitting, generation, content."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from annotate.formats.ls_import import import_export
from annotate.runtime.errors import UserError
from annotate.tables import store
from annotate.tables.views import reference_boxes
from quality.cascade.sanity import overfit_check
from quality.gold.consensus import build_consensus
from quality.splits.partition import split_set
from stage2_generate.cli import main
from stage2_generate.content import content_scores, mentioned
from stage2_generate.generate import Captioner, generate_captions, generate_job, model_layouts
from stage2_generate.model import build_model, load
from stage2_generate.noise import Noise, calibrate, calibrate_scores, corrupt, jitter_for_iou
from stage2_generate.tokenizer import train_tokenizer
from stage2_generate.train import RUN_FILE, TrainConfig, run_record, train
from tests.conftest import REPO

LABELS = ["red circle", "yellow circle", "blue square", "green square", "green triangle"]


@pytest.fixture(scope="module")
def demo_split():
    ts, _ = import_export(REPO / "data/demo/export.json")
    return split_set(build_consensus(ts).tables, 0.15, 0.15)


@pytest.fixture(scope="module")
def trained(demo_split, tmp_path_factory):
    out = tmp_path_factory.mktemp("stage2") / "model"
    record = train(demo_split, out, TrainConfig(preset="tiny", epochs=4, progress=False))
    return out, record


def test_tokenizer_special_ids_and_round_trip(tmp_path):
    tok = train_tokenizer(["red circle x1 y2 x3 y4", "A red circle, left of a blue square."])
    assert (tok.pad_token_id, tok.eos_token_id, tok.unk_token_id) == (0, 1, 2)
    ids = tok("a red circle, left of a blue square.")["input_ids"]
    assert ids[-1] == tok.eos_token_id and tok.unk_token_id not in ids
    assert tok.decode(ids, skip_special_tokens=True) == "a red circle, left of a blue square."
    tok.save_pretrained(tmp_path)
    from transformers import AutoTokenizer

    assert AutoTokenizer.from_pretrained(tmp_path)("red circle")["input_ids"] == tok(
        "red circle")["input_ids"]


def test_model_save_load_round_trip_is_exact(tmp_path):
    tok = train_tokenizer(["red circle x1 y2", "a red circle"])
    torch.manual_seed(0)
    model = build_model(tok, "tiny").eval()
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    loaded, loaded_tok = load(tmp_path)
    batch = tok(["red circle x1 y2"], return_tensors="pt")
    labels = tok(text_target=["a red circle"], return_tensors="pt")["input_ids"]
    with torch.no_grad():
        a = model(**batch, labels=labels).logits
        b = loaded.eval()(**batch, labels=labels).logits
    assert torch.equal(a, b)
    assert len(loaded_tok) == len(tok)
    with pytest.raises(ValueError, match="unknown preset"):
        build_model(tok, "huge")
    with pytest.raises(FileNotFoundError, match="nothing is downloaded"):
        load(tmp_path / "missing")


def test_overfits_eight_examples():
    check = overfit_check()
    assert check["passed"] and check["final_loss"] < 0.05 < check["first_loss"]


def test_noise_rates_and_calibration():
    rng = np.random.default_rng(0)
    n = 20000
    images = pd.DataFrame({"image_id": [str(i) for i in range(n // 4)], "width": 200,
                           "height": 200})
    boxes = pd.DataFrame({"image_id": np.repeat(images.image_id, 4).to_numpy(),
                          "object_id": [str(k) for k in range(n)],
                          "label": rng.choice(LABELS, n), "x0": 50.0, "y0": 50.0, "x1": 90.0,
                          "y1": 90.0, "annotator": "g", "source": "consensus", "score": np.nan})
    dropped = corrupt(boxes, images, Noise(drop=0.3), LABELS, rng)
    assert len(dropped) / n == pytest.approx(0.7, abs=0.02)
    extra = corrupt(boxes, images, Noise(spurious=0.5), LABELS, rng)
    assert (len(extra) - n) / len(images) == pytest.approx(0.5, abs=0.05)
    swapped = corrupt(boxes, images, Noise(swap=0.2), LABELS, rng)
    assert (swapped.label.to_numpy() != boxes.label.to_numpy()).mean() == pytest.approx(0.2,
                                                                                        abs=0.02)
    doubled = corrupt(boxes, images, Noise(spurious=0.5, duplicate=1.0), LABELS, rng)
    added = doubled[doubled.object_id.str.startswith("noise")]
    # every object sits at (50, 50)-(90, 90): a duplicate shifted by <= 1/5 keeps IoU >= 0.47
    overlap = ((np.minimum(added.x1, 90) - np.maximum(added.x0, 50))
               * (np.minimum(added.y1, 90) - np.maximum(added.y0, 50)))
    assert len(added) / len(images) == pytest.approx(0.5, abs=0.05)
    assert (overlap / (2 * 1600 - overlap)).min() >= 0.47
    moved = corrupt(boxes, images, Noise(jitter=0.1), LABELS, rng)
    assert ((moved.x0 >= 0) & (moved.x1 <= 200) & (moved.x1 > moved.x0)).all()
    assert moved.x0.std() == pytest.approx(4.0, rel=0.1)  # 0.1 x box width 40
    assert jitter_for_iou(1.0) == 0.0 and 0.05 < jitter_for_iou(0.7) < 0.15

    errors = pd.DataFrame({
        "image_id": ["1", "1", "1", "2", "2", "3"],
        "status": ["matched", "missed", "wrong_label", "matched", "spurious", "matched"],
        "gold_label": ["red circle", "red circle", "blue square", "blue square", None,
                       "red circle"],
        "pred_label": ["red circle", None, "green square", "blue square", "red circle",
                       "red circle"],
        "iou": [0.9, np.nan, 0.8, 0.9, 0.0, 0.9]})
    noise = calibrate(errors)
    assert noise.duplicate == 0.0
    assert calibrate(errors.assign(iou=[0.9, np.nan, 0.8, 0.9, 0.6, 0.9])).duplicate == 1.0
    assert noise.drop == pytest.approx(1 / 5) and noise.spurious == pytest.approx(1 / 3)
    assert noise.swap == pytest.approx(1 / 4)
    assert noise.confusion["blue square"] == {"blue square": 0.5, "green square": 0.5}
    assert noise.jitter == jitter_for_iou(0.9)
    with pytest.raises(ValueError, match="unknown status"):
        calibrate(errors.assign(status="lost"))
    with pytest.raises(ValueError, match="drop must be in"):
        Noise(drop=1.5)


def test_training_lowers_val_loss_and_records_the_run(trained):
    out, record = trained
    losses = [h["eval_loss"] for h in record["history"] if "eval_loss" in h]
    assert len(losses) >= 2 and losses[-1] < losses[0]
    assert run_record(out)["config"]["preset"] == "tiny"
    assert (out / "tokenizer.json").exists() and not (out / "checkpoints").exists()


def test_fine_tuning_from_a_saved_checkpoint_keeps_its_tokenizer(trained, demo_split, tmp_path):
    out, _ = trained
    record = train(demo_split, tmp_path / "tuned", TrainConfig(model=str(out), epochs=1,
                                                               progress=False))
    assert record["config"]["model"] == str(out)
    assert (tmp_path / "tuned" / "tokenizer.json").read_text() == (
        out / "tokenizer.json").read_text()


def test_generation_is_deterministic_and_a_valid_table(trained, demo_split):
    out, _ = trained
    images = demo_split.images[demo_split.images.split == "test"]
    boxes = reference_boxes(demo_split)
    first = generate_captions(out, boxes, images, batch_size=7)
    again = generate_captions(out, boxes, images, batch_size=16, num_beams=1)
    assert first.caption.tolist() == again.caption.tolist()
    assert len(first) == len(images) and first.source.str.startswith("model:").all()
    beams = generate_captions(out, boxes, images, num_beams=3)
    assert len(beams) == len(images)


def test_a_captioner_generates_each_distinct_layout_once(trained, demo_split, tmp_path):
    """The test images twice over (copies under new ids, the same boxes): as many layouts
    generated as there are distinct texts, copies captioned alike, and each image's caption
    the one a fresh model writes for it alone (batch of 1, no deduplication)."""
    out, _ = trained
    images = demo_split.images[demo_split.images.split == "test"].head(12)
    boxes = reference_boxes(demo_split)
    boxes = boxes[boxes.image_id.isin(images.image_id)]
    copies = images.assign(image_id=images.image_id + "-copy")
    both = pd.concat([images, copies], ignore_index=True)
    both_boxes = pd.concat([boxes, boxes.assign(image_id=boxes.image_id + "-copy")],
                           ignore_index=True)
    captioner = Captioner(out)
    generated = []
    real_generate = captioner.model.generate
    captioner.model.generate = lambda **kw: generated.append(len(kw["input_ids"])) or \
        real_generate(**kw)
    captions = captioner(both_boxes, both).set_index("image_id").caption
    distinct = model_layouts(out, boxes, images).nunique()
    assert sum(generated) == distinct < len(both)
    assert (captions[copies.image_id].to_numpy() == captions[images.image_id].to_numpy()).all()
    alone = generate_captions(out, boxes, images, batch_size=1).set_index("image_id").caption
    assert captions[images.image_id].tolist() == alone[images.image_id].tolist()
    # a second table of the same images (one box fewer on the first): only its new layout
    first = boxes.image_id.iloc[0]
    fewer = boxes.drop(boxes.index[boxes.image_id == first][:1])
    written = generate_job(captioner, fewer, images, tmp_path / "c.parquet")
    assert sum(generated) == distinct + 1
    assert pd.read_parquet(tmp_path / "c.parquet").caption.tolist() == written.caption.tolist()


def test_noise_and_extra_boxes_training_runs(demo_split, tmp_path):
    predicted = corrupt(reference_boxes(demo_split), demo_split.images, Noise(drop=0.2),
                        LABELS, np.random.default_rng(1))
    record = train(demo_split, tmp_path / "m", TrainConfig(
        preset="tiny", epochs=2, progress=False, noise=Noise(drop=0.1, jitter=0.05, swap=0.05),
        extra_share=0.5), extra_boxes=predicted)
    assert record["config"]["noise"]["drop"] == 0.1


def _score_errors() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"image_id": [str(k) for k in range(300)],
                         "status": ["matched"] * 200 + ["spurious"] * 100,
                         "gold_label": None, "pred_label": None, "iou": np.nan,
                         "score": np.r_[rng.uniform(0.4, 1, 200), rng.uniform(0.05, 0.3, 100)]})


def test_a_model_without_scores_reads_scored_layouts_as_before(trained, demo_split, tmp_path):
    out, _ = trained
    images = demo_split.images[demo_split.images.split == "test"]
    boxes = reference_boxes(demo_split).drop(columns="score")
    scored = boxes.assign(score=np.random.default_rng(0).uniform(0, 1, len(boxes)))
    assert run_record(out)["input"] == {"bins": 16, "score_bins": 0, "reads": "class, box"}
    assert model_layouts(out, scored, images).equals(model_layouts(out, boxes, images))
    assert not model_layouts(out, scored, images).str.contains(r" s\d").any()
    plain = generate_captions(out, boxes, images)
    assert generate_captions(out, scored, images).caption.tolist() == plain.caption.tolist()
    # a model saved before scores existed (no score_bins in its record) reads them the same way
    old = tmp_path / "old"
    shutil.copytree(out, old)
    record = json.loads((old / RUN_FILE).read_text())
    del record["config"]["score_bins"], record["config"]["scores"], record["input"]
    (old / RUN_FILE).write_text(json.dumps(record))
    assert generate_captions(old, scored, images).caption.tolist() == plain.caption.tolist()


def test_a_scores_model_records_its_contract_and_reads_scores(demo_split, tmp_path):
    config = TrainConfig(preset="tiny", epochs=2, progress=False, noise=Noise(spurious=0.3),
                         score_bins=5, scores=calibrate_scores(_score_errors()))
    record = train(demo_split, tmp_path / "m", config)
    assert record["input"] == {"bins": 16, "score_bins": 5,
                               "reads": "class, box, detection score (5 buckets)"}
    assert len(record["config"]["scores"]["found"]) == 101
    _, tokenizer = load(tmp_path / "m")
    assert tokenizer.unk_token_id not in tokenizer("s0 s1 s2 s3 s4")["input_ids"]
    images = demo_split.images[demo_split.images.split == "test"]
    boxes = reference_boxes(demo_split)
    low = boxes.assign(score=0.1)
    layouts = model_layouts(tmp_path / "m", low, images)
    assert layouts[layouts != "<empty>"].str.endswith(" s0").all()
    certain = model_layouts(tmp_path / "m", boxes.drop(columns="score"), images)
    assert not certain.str.contains(r" s[0-3]\b").any()  # gold boxes are certain: top bucket
    assert certain[certain != "<empty>"].str.endswith(" s4").all()
    assert len(generate_captions(tmp_path / "m", low, images)) == len(images)
    with pytest.raises(UserError, match="needs the detector's score distributions"):
        train(demo_split, tmp_path / "x", TrainConfig(preset="tiny", epochs=1, score_bins=5,
                                                      progress=False))


def test_content_score_known_answers():
    assert mentioned("two green triangles above a yellow circle", LABELS) == {
        "green triangle": 2, "yellow circle": 1}
    assert mentioned("a red circle above another red circle", LABELS) == {"red circle": 2}
    assert mentioned("an empty background", LABELS) == {}
    captions = pd.DataFrame({"image_id": ["1", "1", "2"], "caption": [
        "two red circles", "a blue square and a red circle", "nothing at all"]})
    boxes = pd.DataFrame({"image_id": ["1", "1"], "label": ["red circle", "red circle"]})
    scores = content_scores(captions, boxes, LABELS)
    assert scores.f1.tolist() == [1.0, pytest.approx(0.5), 1.0]
    truth = store.load(REPO / "data/demo/truth")
    assert content_scores(truth.captions, truth.boxes, LABELS).f1.mean() == 1.0


def test_cli_train_generate_score(tmp_path, demo_split, capsys):
    store.save(demo_split, tmp_path / "set")
    model = tmp_path / "model"
    assert main(["train", str(tmp_path / "set"), "--out", str(model), "--preset", "tiny",
                 "--epochs", "1", "--drop", "0.1"]) == 0
    captions = tmp_path / "captions.parquet"
    assert main(["generate", str(model), str(tmp_path / "set"), "--split", "test",
                 "--out", str(captions)]) == 0
    assert main(["score", str(captions), str(tmp_path / "set"), "--split", "test",
                 "--n-boot", "20", "--json", str(tmp_path / "s.json")]) == 0
    assert '"content"' in capsys.readouterr().out
    assert main(["generate", str(tmp_path / "nope"), str(tmp_path / "set"),
                 "--out", str(captions)]) == 2
    assert main(["train", str(tmp_path / "set"), "--out", str(model), "--score-bins", "5"]) == 2
    assert "--scores-from" in capsys.readouterr().err
    _score_errors().to_parquet(tmp_path / "errors.parquet")
    assert main(["train", str(tmp_path / "set"), "--out", str(tmp_path / "scored"), "--preset",
                 "tiny", "--epochs", "1", "--score-bins", "5", "--scores-from",
                 str(tmp_path / "errors.parquet")]) == 0
    assert run_record(tmp_path / "scored")["input"]["score_bins"] == 5


def test_length_grouped_batches_pad_less_and_keep_every_example(trained, demo_split, tmp_path):
    from transformers import DataCollatorForSeq2Seq, Seq2SeqTrainer

    from annotate.formats.layout import encode_layouts
    from annotate.tables.views import gold_boxes
    from stage2_generate.train import CaptionPairs, caption_pairs, training_arguments

    model, tokenizer = load(trained[0])
    layouts = encode_layouts(gold_boxes(demo_split), demo_split.images, TrainConfig.bins)
    padding, tokens = {}, {}
    for grouped in (False, True):
        config = TrainConfig(batch_size=8, group_by_length=grouped)
        pairs = CaptionPairs(caption_pairs(demo_split, "train"), layouts, tokenizer, config)
        trainer = Seq2SeqTrainer(model=model, args=training_arguments(config, tmp_path),
                                 train_dataset=pairs, eval_dataset=pairs,
                                 processing_class=tokenizer,
                                 data_collator=DataCollatorForSeq2Seq(tokenizer, model=model))
        batches = list(trainer.get_train_dataloader())
        padding[grouped] = sum(int((1 - b["attention_mask"]).sum()) for b in batches)
        tokens[grouped] = sorted(int(n) for b in batches for n in b["attention_mask"].sum(1))
    assert tokens[True] == tokens[False]  # the same examples, once each per epoch
    assert padding[True] < padding[False] / 2
