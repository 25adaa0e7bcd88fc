"""Stage 2's settings, without torch or transformers: what a training run depends on and how
captions are decoded. The CLI takes its defaults from here (and so starts fast)."""

from __future__ import annotations

from dataclasses import dataclass, field

from annotate.formats.layout import DEFAULT_BINS
from stage2_generate.noise import Noise, ScoreDistributions

#: Decoding defaults of `stage2_generate.generate.generate_captions`.
BATCH_SIZE, NUM_BEAMS, MAX_NEW_TOKENS = 32, 1, 48


@dataclass
class TrainConfig:
    """Everything a training run depends on (written to the model folder)."""

    preset: str = "small"
    model: str | None = None  # a local checkpoint to fine-tune instead of a fresh preset
    #: 20 epochs at batch 16, stopping after 5 without a better validation loss: the linear
    #: schedule reaches its end, so the kept model is annealed (docs/robustness.md, "Why the
    #: learned model is below the baseline", point 9: on the demo split the validation loss
    #: bottoms out at epochs 14-19, and 30 epochs at batch 32 with patience 3 stopped at a
    #: wobble while the learning rate was still high, four times the spread over seeds)
    epochs: int = 20
    batch_size: int = 16
    learning_rate: float = 1e-3
    #: batches of layouts of similar length (transformers' `LengthGroupedSampler`): less
    #: padding, so an epoch costs less; the order is still random and fixed by the seed
    group_by_length: bool = True
    bins: int = DEFAULT_BINS
    patience: int = 5
    seed: int = 0
    max_source_tokens: int = 160
    max_target_tokens: int = 48
    noise: Noise = field(default_factory=Noise)
    #: share of training examples that read `extra_boxes` (e.g. out-of-fold stage-1 output)
    extra_share: float = 0.0
    #: score buckets in the layout (0: the model reads classes and boxes only)
    score_bins: int = 0
    #: the detector's score distributions that gold layouts draw their scores from (needed
    #: when `score_bins` > 0; `stage2_generate.noise.calibrate_scores`)
    scores: ScoreDistributions | None = None
    progress: bool = True
