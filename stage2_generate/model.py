"""The stage-2 seq2seq model: T5 built from a config preset, or any local checkpoint."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from annotate.runtime.errors import MissingFileError, UserError

if TYPE_CHECKING:  # transformers takes seconds to import: only the functions that build need it
    from transformers import T5ForConditionalGeneration

#: Sizes built from a config when no checkpoint is given.
PRESETS: dict[str, dict] = {
    # a few hundred thousand parameters: for tests
    "tiny": {"d_model": 64, "d_ff": 128, "num_layers": 2, "num_decoder_layers": 2,
             "num_heads": 2, "d_kv": 32},
    # ~1M parameters: reaches sacreBLEU ~58 on the demo captions in minutes on CPU
    "small": {"d_model": 128, "d_ff": 512, "num_layers": 2, "num_decoder_layers": 2,
              "num_heads": 4, "d_kv": 32},
}


def build_model(tokenizer, preset: str = "small", dropout: float = 0.1
                ) -> T5ForConditionalGeneration:
    """A freshly initialised T5 sized by `preset`, for `tokenizer`'s vocabulary."""
    from transformers import T5Config, T5ForConditionalGeneration

    if preset not in PRESETS:
        raise UserError(f"unknown preset {preset!r}: use one of {sorted(PRESETS)}")
    config = T5Config(vocab_size=len(tokenizer), dropout_rate=dropout,
                      pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                      decoder_start_token_id=tokenizer.pad_token_id,
                      feed_forward_proj="relu", **PRESETS[preset])
    return T5ForConditionalGeneration(config)


def load(name_or_path: str | os.PathLike):
    """(model, tokenizer) from a local checkpoint folder (ours or any seq2seq checkpoint), or a
    hub name already in the local Hugging Face cache: nothing is downloaded at run time."""
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    try:
        local = not os.path.isdir(name_or_path)
        return (AutoModelForSeq2SeqLM.from_pretrained(name_or_path, local_files_only=local),
                AutoTokenizer.from_pretrained(name_or_path, local_files_only=local))
    except OSError as err:
        raise MissingFileError(
            f"{name_or_path}: no such model folder, and not in the local Hugging Face cache "
            "(nothing is downloaded at run time; pass a folder saved with save_pretrained)"
        ) from err
