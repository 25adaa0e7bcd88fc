"""Training of the stage-2 generator with the Hugging Face Trainer: CPU or CUDA, multi-GPU under
`torchrun`/accelerate, progress bars, early stopping on the validation loss, fixed seeds, and
optional input noise that is drawn anew every epoch."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset
from transformers import (
    DataCollatorForSeq2Seq,
    EarlyStoppingCallback,
    PrinterCallback,
    Seq2SeqTrainer,
    Seq2SeqTrainingArguments,
    TrainerCallback,
    set_seed,
)

from annotate.formats.layout import EMPTY, encode_layouts, score_tokens
from annotate.runtime.atomic import write_json
from annotate.runtime.errors import UserError
from annotate.tables.schema import HUMAN, TableSet
from annotate.tables.views import gold_boxes
from stage2_generate.config import TrainConfig
from stage2_generate.model import build_model, load
from stage2_generate.noise import Noise, corrupt
from stage2_generate.tokenizer import train_tokenizer

RUN_FILE = "twostage.json"


class CaptionPairs(Dataset):
    """(layout text, caption) pairs, tokenised once per set of layout texts (a whole epoch in
    one batched call of the fast tokenizer); the layout texts can be replaced between epochs
    (noise)."""

    def __init__(self, pairs: pd.DataFrame, layouts: pd.Series, tokenizer, config: TrainConfig):
        self.pairs = pairs.reset_index(drop=True)
        self.tokenizer, self.config = tokenizer, config
        self.labels = tokenizer(text_target=self.pairs.caption.tolist(), truncation=True,
                                max_length=config.max_target_tokens)["input_ids"]
        self.refresh(layouts)

    def refresh(self, layouts: pd.Series) -> None:
        sources = self.pairs.image_id.map(layouts).fillna("").tolist()
        self.sources = self.tokenizer(sources, truncation=True,
                                      max_length=self.config.max_source_tokens)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> dict:
        return {"input_ids": self.sources["input_ids"][i],
                "attention_mask": self.sources["attention_mask"][i], "labels": self.labels[i]}


class FreshNoise(TrainerCallback):
    """Draw new corrupted layouts at the start of every epoch."""

    def __init__(self, dataset: CaptionPairs, make_layouts):
        self.dataset, self.make_layouts, self.epoch = dataset, make_layouts, 0

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.epoch += 1
        self.dataset.refresh(self.make_layouts(self.epoch))


def caption_pairs(ts: TableSet, split: str | None) -> pd.DataFrame:
    """Every human caption of the images in `split` (all images when None): image_id, caption."""
    captions = ts.captions[ts.captions.source == HUMAN]
    if split is not None:
        if "split" not in ts.images.columns:
            raise UserError("the set has no split column: run `quality split` first")
        ids = ts.images.image_id[ts.images.split == split]
        captions = captions[captions.image_id.isin(ids)]
    return captions[["image_id", "caption"]].astype({"caption": object})


def train(ts: TableSet, out: str | os.PathLike, config: TrainConfig,
          extra_boxes: pd.DataFrame | None = None) -> dict:
    """The stage-2 training job: a layout-to-caption model on the gold layouts.

    Parameters
    ----------
    ts : TableSet
        A split set: pairs of the `train` split are learned, the `val` split's loss stops
        training early. Gold layouts: consensus, else truth, else one annotator.
    out : path
        Model folder: weights, the local tokenizer and `twostage.json` (the run record).
    config : TrainConfig
        Preset or local checkpoint, epochs, batch (grouped by layout length unless
        `group_by_length` is off), learning rate, patience, seed, and the input noise
        (`Noise`) that makes the model robust to stage-1 errors.
    extra_boxes : pandas.DataFrame, optional
        Boxes (e.g. out-of-fold detections) that a `config.extra_share` of the training
        examples read instead of gold.

    Returns
    -------
    dict
        The run record: config, best validation loss and epoch, data and source versions.
    """
    set_seed(config.seed)
    torch.set_num_threads(os.cpu_count() or 1)
    out = Path(out)
    gold = gold_boxes(ts)
    train_pairs, val_pairs = caption_pairs(ts, "train"), caption_pairs(ts, "val")
    if train_pairs.empty or val_pairs.empty:
        raise UserError(f"need human captions in train and val (have {len(train_pairs)} and "
                         f"{len(val_pairs)})")
    if config.score_bins and config.scores is None:
        raise UserError("a model that reads scores (score_bins > 0) needs the detector's score "
                        "distributions to draw training scores from (TrainConfig.scores: "
                        "stage2_generate.noise.calibrate_scores of a validation error table)")
    labels = list(ts.labels) or sorted(gold.label.dropna().unique())
    rng = np.random.default_rng(config.seed)

    def encode(boxes: pd.DataFrame) -> pd.Series:
        return encode_layouts(boxes, ts.images, config.bins, config.score_bins)

    scores = config.scores if config.score_bins else None
    # validation (early stopping) reads gold layouts, with scores drawn once when it reads any
    clean = encode(corrupt(gold, ts.images, Noise(), labels, rng, scores))
    if config.model:
        model, tokenizer = load(config.model)
    else:  # every coordinate, score token and class name, seen in training or not
        vocabulary = [" ".join(f"x{k} y{k}" for k in range(config.bins)),
                      " ".join(score_tokens(config.score_bins)), *labels, EMPTY]
        tokenizer = train_tokenizer([*vocabulary, *clean.tolist(), *train_pairs.caption])
        model = build_model(tokenizer, config.preset)
    alternative = encode(extra_boxes) if extra_boxes is not None else None
    drawn = config.noise.active or scores is not None

    def layouts_for_epoch(epoch: int) -> pd.Series:
        layouts = (encode(corrupt(gold, ts.images, config.noise, labels, rng, scores))
                   if drawn else clean)
        if alternative is not None and config.extra_share > 0:
            use = rng.random(len(layouts)) < config.extra_share
            layouts = layouts.where(~use, alternative.reindex(layouts.index))
        return layouts

    train_set = CaptionPairs(train_pairs, layouts_for_epoch(0), tokenizer, config)
    val_set = CaptionPairs(val_pairs, clean, tokenizer, config)
    args = training_arguments(config, out / "checkpoints")
    callbacks = [EarlyStoppingCallback(config.patience)]
    if drawn or alternative is not None:
        callbacks.append(FreshNoise(train_set, layouts_for_epoch))
    trainer = Seq2SeqTrainer(model=model, args=args, train_dataset=train_set,
                             eval_dataset=val_set, processing_class=tokenizer,
                             data_collator=DataCollatorForSeq2Seq(tokenizer, model=model),
                             callbacks=callbacks)
    if not config.progress:  # no bars, and no printed log lines either
        trainer.remove_callback(PrinterCallback)
    trainer.train()
    history = [{k: v for k, v in entry.items() if isinstance(v, int | float)}
               for entry in trainer.state.log_history]
    trainer.save_model(str(out))
    tokenizer.save_pretrained(str(out))
    shutil.rmtree(out / "checkpoints", ignore_errors=True)
    record = {"config": {**asdict(config), "noise": config.noise.to_dict()},
              "input": layout_contract(config.bins, config.score_bins), "data": ts.meta,
              "train_pairs": len(train_pairs), "val_pairs": len(val_pairs),
              "best_val_loss": trainer.state.best_metric, "history": history}
    write_json(out / RUN_FILE, record)
    return record


def training_arguments(config: TrainConfig, checkpoints: str | os.PathLike
                       ) -> Seq2SeqTrainingArguments:
    """The Trainer's arguments for `config`: one evaluation and checkpoint per epoch (into
    `checkpoints`), the best by validation loss kept, and batches of similar-length layouts
    when `config.group_by_length`."""
    return Seq2SeqTrainingArguments(
        output_dir=str(checkpoints), num_train_epochs=config.epochs,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size, learning_rate=config.learning_rate,
        eval_strategy="epoch", save_strategy="epoch", logging_strategy="epoch",
        load_best_model_at_end=True, metric_for_best_model="eval_loss",
        greater_is_better=False, save_total_limit=2, seed=config.seed, data_seed=config.seed,
        report_to=[], disable_tqdm=not config.progress, dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available(),
        warmup_steps=0.05,
        train_sampling_strategy="group_by_length" if config.group_by_length else "random")


def layout_contract(bins: int, score_bins: int) -> dict:
    """What a model reads (`annotate.formats.layout`), as its run record states it."""
    reads = "class, box" + (f", detection score ({score_bins} buckets)" if score_bins else "")
    return {"bins": bins, "score_bins": score_bins, "reads": reads}


def run_record(model_dir: str | os.PathLike) -> dict:
    """The run record of a model folder ({} for a foreign checkpoint)."""
    path = Path(model_dir) / RUN_FILE
    return json.loads(path.read_text()) if path.exists() else {}
