"""A word-level tokenizer trained locally with `tokenizers` on layout encodings and captions,
wrapped as a transformers fast tokenizer (saved with the model). No download: users with a
pretrained checkpoint (`--model PATH`) use that checkpoint's own tokenizer instead."""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

PAD, EOS, UNK = "<pad>", "</s>", "<unk>"


def train_tokenizer(texts: Iterable[str], min_frequency: int = 1) -> PreTrainedTokenizerFast:
    """Lower-cased words and punctuation as tokens; ids 0, 1, 2 are pad, end and unknown (the
    ids T5 expects for pad/decoder start and end)."""
    tokenizer = Tokenizer(models.WordLevel(unk_token=UNK))
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.WordLevelTrainer(special_tokens=[PAD, EOS, UNK],
                                        min_frequency=min_frequency)
    tokenizer.train_from_iterator(texts, trainer)
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"$A {EOS}", special_tokens=[(EOS, tokenizer.token_to_id(EOS))])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token=PAD, eos_token=EOS,
                                   unk_token=UNK, clean_up_tokenization_spaces=True)
