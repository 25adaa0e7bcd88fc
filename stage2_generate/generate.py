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


def model_layouts(model_dir: str | os.PathLike, boxes: pd.DataFrame, images: pd.DataFrame
                  ) -> pd.Series:
    """The layout texts the model in `model_dir` reads, by the contract its run record states
    (`bins`, `score_bins`): a model trained without scores never sees them; a foreign
    checkpoint or an older record reads classes and boxes in the default bins."""
    config = run_record(model_dir).get("config", {})
    return encode_layouts(boxes, images, config.get("bins", DEFAULT_BINS),
                          config.get("score_bins", 0))


def generate_captions(model_dir: str | os.PathLike, boxes: pd.DataFrame, images: pd.DataFrame,
                      batch_size: int = BATCH_SIZE, num_beams: int = NUM_BEAMS,
                      max_new_tokens: int = MAX_NEW_TOKENS,
                      device: str | None = None, progress: bool = False) -> pd.DataFrame:
    """One caption per image of `images` from its `boxes` (gold or predicted: stage 2 does not
    care), as a captions table with source `model:<version>`."""
    model, tokenizer = load(model_dir)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device).eval()
    layouts = model_layouts(model_dir, boxes, images)
    texts = layouts.tolist()
    captions: list[str] = []
    steps = range(0, len(texts), batch_size)
    for start in tqdm(steps, desc="generating", disable=not progress):
        batch = tokenizer(texts[start:start + batch_size], return_tensors="pt", padding=True,
                          truncation=True, max_length=256).to(device)
        with torch.no_grad():
            output = model.generate(**batch, num_beams=num_beams, do_sample=False,
                                    max_new_tokens=max_new_tokens)
        captions += tokenizer.batch_decode(output, skip_special_tokens=True)
    version = model_version(model_dir)
    return coerce("captions", pd.DataFrame({
        "image_id": layouts.index.to_numpy(), "annotator": version,
        "caption": [c.strip() for c in captions], "source": model_source(version)}))


def generate_job(model_dir: str | os.PathLike, boxes: pd.DataFrame, images: pd.DataFrame,
                 out: str | os.PathLike, **options) -> pd.DataFrame:
    """The generation job: one caption per image from its layout, written to `out`.

    Parameters
    ----------
    model_dir : path
        A stage-2 model folder (`stage2-generate train --out`).
    boxes : pandas.DataFrame
        The layouts: gold boxes or a detector's (stage 2 does not know which).
    images : pandas.DataFrame
        The images to caption.
    out : path
        Where the captions table is written (Parquet, atomically).
    **options
        `generate_captions`' decoding options (batch_size, num_beams, max_new_tokens,
        device, progress).

    Returns
    -------
    pandas.DataFrame
        The captions table, source `model:<version>` (the weights' hash).
    """
    captions = generate_captions(model_dir, boxes, images, **options)
    write_parquet(out, captions)
    return captions
