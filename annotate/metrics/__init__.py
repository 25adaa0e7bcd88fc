"""Shared measurements: box geometry (IoU), caption metrics (coco-caption BLEU, ROUGE-L,
CIDEr-D on PTB tokens, chrF distances)."""
