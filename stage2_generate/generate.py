"""Batched, deterministic caption generation (greedy or beam search) from boxes tables."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pandas as pd
import torch
from tqdm.auto import tqdm

from annotate.formats.layout import DEFAULT_BINS, encode_layouts
from annotate.runtime.atomic import write_parquet
from annotate.tables.schema import coerce, model_source
from stage2_generate.config import BATCH_SIZE, MAX_NEW_TOKENS, NUM_BEAMS
from stage2_generate.model import load
from stage2_generate.train import run_record


def model_version(model_dir: str | os.PathLike) -> str:
    """`<folder name>-<first 8 hex of the weights' sha256>`: names the exact weights."""
    folder = Path(model_dir)
    weights = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("*.bin"))
    digest = hashlib.sha256()
    for path in weights:
        digest.update(path.read_bytes())
    return f"{folder.resolve().name}-{digest.hexdigest()[:8]}"


def layout_settings(model_dir: str | os.PathLike) -> tuple[int, int]:
    """(bins, score_bins) of the layouts the model in `model_dir` reads, as its run record
    states them: a model trained without scores never sees them; a foreign checkpoint or an
    older record reads classes and boxes in the default bins."""
    config = run_record(model_dir).get("config", {})
    return config.get("bins", DEFAULT_BINS), config.get("score_bins", 0)


def model_layouts(model_dir: str | os.PathLike, boxes: pd.DataFrame, images: pd.DataFrame
                  ) -> pd.Series:
    """The layout texts the model in `model_dir` reads (`layout_settings`)."""
    return encode_layouts(boxes, images, *layout_settings(model_dir))


class Captioner:
    """A stage-2 model loaded once that captions layouts, each distinct layout text once.

    Many layouts repeat: the same image at neighbouring thresholds, a detector that found
    exactly the gold objects, images with the same few objects. Greedy and beam decoding are
    deterministic, so a text's caption is generated once and reused (within a call and across
    calls on the same `Captioner`). The distinct texts are decoded shortest first, so a batch
    pads little.

    Parameters
    ----------
    model_dir : path
        A stage-2 model folder (ours or any local seq2seq checkpoint).
    batch_size, num_beams, max_new_tokens : int
        Decoding settings (defaults: `stage2_generate.config`).
    device : str, optional
        "cuda" when available, else "cpu".
    progress : bool
        A progress bar over the batches.
    """

    def __init__(self, model_dir: str | os.PathLike, batch_size: int = BATCH_SIZE,
                 num_beams: int = NUM_BEAMS, max_new_tokens: int = MAX_NEW_TOKENS,
                 device: str | None = None, progress: bool = False):
        self.model, self.tokenizer = load(model_dir)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model.to(self.device).eval()
        self.batch_size, self.num_beams = batch_size, num_beams
        self.max_new_tokens, self.progress = max_new_tokens, progress
        self.version = model_version(model_dir)
        self.layout_settings = layout_settings(model_dir)  # read once, not per call
        #: layout text -> caption, for every text captioned so far
        self.known: dict[str, str] = {}

    def caption_texts(self, texts: list[str]) -> list[str]:
        """The caption of each layout text, generating only the texts not seen before."""
        new = sorted(set(texts).difference(self.known), key=lambda t: (len(t), t))
        steps = range(0, len(new), self.batch_size)
        for start in tqdm(steps, desc="generating", disable=not self.progress):
            chunk = new[start:start + self.batch_size]
            batch = self.tokenizer(chunk, return_tensors="pt", padding=True, truncation=True,
                                   max_length=256).to(self.device)
            with torch.no_grad():
                output = self.model.generate(**batch, num_beams=self.num_beams,
                                             do_sample=False,
                                             max_new_tokens=self.max_new_tokens)
            decoded = self.tokenizer.batch_decode(output, skip_special_tokens=True)
            self.known.update(zip(chunk, (c.strip() for c in decoded), strict=True))
        return [self.known[t] for t in texts]

    def __call__(self, boxes: pd.DataFrame, images: pd.DataFrame) -> pd.DataFrame:
        """One caption per image of `images` from its `boxes`, as a captions table with
        source `model:<version>`."""
        layouts = encode_layouts(boxes, images, *self.layout_settings)
        return coerce("captions", pd.DataFrame({
            "image_id": layouts.index.to_numpy(), "annotator": self.version,
            "caption": self.caption_texts(layouts.tolist()),
            "source": model_source(self.version)}))


def generate_captions(model_dir: str | os.PathLike, boxes: pd.DataFrame, images: pd.DataFrame,
                      batch_size: int = BATCH_SIZE, num_beams: int = NUM_BEAMS,
                      max_new_tokens: int = MAX_NEW_TOKENS,
                      device: str | None = None, progress: bool = False) -> pd.DataFrame:
    """One caption per image of `images` from its `boxes` (gold or predicted: stage 2 does not
    care), as a captions table with source `model:<version>` (`Captioner`, used once)."""
    return Captioner(model_dir, batch_size, num_beams, max_new_tokens, device, progress)(
        boxes, images)


def generate_job(model: str | os.PathLike | Captioner, boxes: pd.DataFrame,
                 images: pd.DataFrame, out: str | os.PathLike, **options) -> pd.DataFrame:
    """The generation job: one caption per image from its layout, written to `out`.

    Parameters
    ----------
    model : path or Captioner
        A stage-2 model folder (`stage2-generate train --out`), or a `Captioner` already
        holding it (it keeps the captions it made, so jobs on overlapping layouts reuse them).
    boxes : pandas.DataFrame
        The layouts: gold boxes or a detector's (stage 2 does not know which).
    images : pandas.DataFrame
        The images to caption.
    out : path
        Where the captions table is written (Parquet, atomically).
    **options
        `Captioner`'s decoding options (batch_size, num_beams, max_new_tokens, device,
        progress), for a model folder.

    Returns
    -------
    pandas.DataFrame
        The captions table, source `model:<version>` (the weights' hash).
    """
    captioner = model if isinstance(model, Captioner) else Captioner(model, **options)
    captions = captioner(boxes, images)
    write_parquet(out, captions)
    return captions
