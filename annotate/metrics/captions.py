"""Caption metrics, offline: BLEU-1..4, ROUGE-L and CIDEr-D exactly as coco-caption computes them
(on its PTB tokenization, reproduced without Java in `ptb_tokenizer`), plus sacreBLEU and chrF
as extra, separately named metrics on the raw text; any number of references per image, with
bootstrap confidence intervals over images.

Also a vectorised pairwise chrF for the caption distance of reliability (1 - chrF): hundreds of
thousands of pairs per second, equal to sacrebleu's sentence chrF.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import pandas as pd
import sacrebleu
from scipy import sparse

from annotate.metrics import ptb_tokenizer
from annotate.stats.bootstrap import draws, percentile_interval

CHRF_ORDER = 6
CHRF_BETA = 2
BLEU_N = 4
CIDER_N = 4
CIDER_SIGMA = 6.0
ROUGE_BETA = 1.2
#: coco-caption's metrics on its tokenization, then the sacrebleu extras on raw text.
COCO_METRICS = ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "rouge_l", "cider_d")
METRICS = (*COCO_METRICS, "sacrebleu", "chrf")
#: The one tokenization of the coco-caption metrics, as the report states it.
TOKENIZATION = "PTB (coco-caption: Stanford PTBTokenizer, lower-cased, punctuation removed)"
_BLEU_TINY, _BLEU_SMALL = 1e-15, 1e-9  # coco-caption's guards against 0/0


@lru_cache(maxsize=1 << 16)
def _tokens(text: str) -> tuple[str, ...]:
    return tuple(ptb_tokenizer.tokenize(text))


def tokenize(text: str) -> list[str]:
    """The tokens coco-caption scores: PTB tokens, lower-cased, punctuation tokens removed."""
    return list(_tokens(str(text)))


def caption_scores(hyps: Sequence[str], refs: Sequence[Sequence[str]], *, n_boot: int = 1000,
                   confidence: float = 0.95, seed: int = 0, groups: Sequence | None = None
                   ) -> dict[str, dict[str, float]]:
    """coco-caption's BLEU-1..4, ROUGE-L and CIDEr-D (plus sacreBLEU and chrF), with intervals.

    Parameters
    ----------
    hyps : sequence of str
        The captions to score.
    refs : sequence of sequence of str
        `refs[i]`: the references of `hyps[i]` (one or more).
    n_boot : int
        Bootstrap resamples.
    confidence : float
        Coverage of the percentile intervals.
    seed : int
        Seed of the resampling.
    groups : sequence, optional
        Each item's group (e.g. its image): items of one group are drawn together, since
        they are not independent. Default: the items themselves are resampled.

    Returns
    -------
    dict
        Per metric {"score", "ci_low", "ci_high"}: bleu_1 .. bleu_4, rouge_l, cider_d (equal
        to pycocoevalcap on the same PTB tokens), sacrebleu, chrf.
    """
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} reference lists")
    if any(len(r) == 0 for r in refs):
        empty = next(i for i, r in enumerate(refs) if len(r) == 0)
        raise ValueError(f"item {empty} has no reference")
    if not hyps:
        return {name: {"score": math.nan, "ci_low": math.nan, "ci_high": math.nan}
                for name in METRICS}
    group = (np.arange(len(hyps)) if groups is None
             else pd.factorize(pd.Series(list(groups), dtype=object))[0])
    n_groups = int(group.max()) + 1
    resampled = draws(n_groups, n_boot, seed)  # items, or whole groups of them
    weights = (np.stack([np.bincount(d, minlength=n_groups)[group] for d in resampled])
               if len(resampled) else None)
    out = {}
    stats = bleu_stats(hyps, refs)
    scores = bleu_from_stats(stats.sum(axis=0))
    boot = ([] if weights is None else
            np.stack([bleu_from_stats(totals) for totals in weights @ stats]))
    for order in range(BLEU_N):
        out[f"bleu_{order + 1}"] = _with_interval(
            scores[order], [] if weights is None else boot[:, order], confidence)
    for name, per_item in (("rouge_l", rouge_l(hyps, refs)), ("cider_d", cider_d(hyps, refs))):
        boot = [] if weights is None else (weights @ per_item) / len(hyps)
        out[name] = _with_interval(float(per_item.mean()), boot, confidence)
    for name, metric in (("sacrebleu", sacrebleu.BLEU()), ("chrf", sacrebleu.CHRF())):
        streams = reference_streams(refs)
        stats = np.asarray(metric._extract_corpus_statistics(list(hyps), streams), np.float64)
        score = metric._compute_score_from_stats(stats.sum(axis=0).tolist()).score
        boot = ([] if weights is None else
                [metric._compute_score_from_stats((w @ stats).tolist()).score for w in weights])
        out[name] = _with_interval(score, boot, confidence)
    return out


def bleu_stats(hyps: Sequence[str], refs: Sequence[Sequence[str]]) -> np.ndarray:
    """coco-caption's BLEU sufficient statistics per item: hypothesis length, the closest
    reference length (ties to the shorter), then n-gram guesses and clipped matches for
    n = 1..4. Summing rows and calling `bleu_from_stats` gives corpus BLEU, so a bootstrap
    only re-weights rows."""
    out = np.zeros((len(hyps), 2 + 2 * BLEU_N))
    for i, (hyp, rs) in enumerate(zip(hyps, refs, strict=True)):
        words = _tokens(str(hyp))
        ref_words = [_tokens(str(r)) for r in rs]
        max_counts: Counter = Counter()
        for ref in ref_words:
            for gram, count in _ngrams(list(ref), BLEU_N).items():
                max_counts[gram] = max(max_counts[gram], count)
        length = len(words)
        out[i, 0] = length
        out[i, 1] = min((abs(len(r) - length), len(r)) for r in ref_words)[1]
        out[i, 2:2 + BLEU_N] = [max(0, length - k) for k in range(BLEU_N)]
        for gram, count in _ngrams(list(words), BLEU_N).items():
            out[i, 2 + BLEU_N + len(gram) - 1] += min(count, max_counts.get(gram, 0))
    return out


def bleu_from_stats(totals: np.ndarray) -> np.ndarray:
    """BLEU-1..4 from summed `bleu_stats`, with coco-caption's brevity penalty and guards."""
    length, ref_length = totals[0], totals[1]
    guess, correct = totals[2:2 + BLEU_N], totals[2 + BLEU_N:]
    products = np.cumprod((correct + _BLEU_TINY) / (guess + _BLEU_SMALL))
    scores = products ** (1.0 / np.arange(1, BLEU_N + 1))
    ratio = (length + _BLEU_TINY) / (ref_length + _BLEU_SMALL)
    return scores * math.exp(1 - 1 / ratio) if ratio < 1 else scores


def paired_bleu_4(hyps_a: Sequence[str], hyps_b: Sequence[str], refs: Sequence[Sequence[str]],
                  picked: np.ndarray) -> tuple[float, float, np.ndarray]:
    """Corpus BLEU-4 of two systems on the same items with the same references, and the
    bootstrap replicates of a - b, each row of `picked` drawing items for both (paired)."""
    stats_a, stats_b = bleu_stats(hyps_a, refs), bleu_stats(hyps_b, refs)

    def bleu_4(stats: np.ndarray) -> float:
        return float(bleu_from_stats(stats.sum(axis=0))[-1])

    boot = np.array([bleu_4(stats_a[d]) - bleu_4(stats_b[d]) for d in picked])
    return bleu_4(stats_a), bleu_4(stats_b), boot


def reference_streams(refs: Sequence[Sequence[str]]) -> list[list[str | None]]:
    """sacrebleu wants one stream per reference position; None pads items with fewer refs."""
    width = max(len(r) for r in refs)
    return [[r[k] if k < len(r) else None for r in refs] for k in range(width)]


def _with_interval(score: float, boot, confidence: float) -> dict[str, float]:
    low, high = percentile_interval(boot, confidence)
    return {"score": float(score), "ci_low": low, "ci_high": high}


def _ngrams(tokens: list[str], n: int) -> Counter:
    counts: Counter = Counter()
    for k in range(1, n + 1):
        counts.update(tuple(tokens[i:i + k]) for i in range(len(tokens) - k + 1))
    return counts


def cider_d(hyps: Sequence[str], refs: Sequence[Sequence[str]]) -> np.ndarray:
    """Per-item CIDEr-D exactly as coco-caption computes it.

    Document frequencies come from this corpus's references; tf-idf vectors are clipped, the
    length penalty is Gaussian (sigma 6), the score x10. coco-caption measures the length for
    the penalty in bigrams (its `if n == 1` counts the second order); we keep that so the
    figures compare with published ones.

    Parameters
    ----------
    hyps : sequence of str
        The captions.
    refs : sequence of sequence of str
        The references of each caption; they also make the document frequencies.

    Returns
    -------
    numpy.ndarray
        One score per caption (the corpus CIDEr-D is their mean).
    """
    hyp_counts = [_ngrams(tokenize(h), CIDER_N) for h in hyps]
    ref_counts = [[_ngrams(tokenize(r), CIDER_N) for r in rs] for rs in refs]
    doc_freq: Counter = Counter()
    for rs in ref_counts:
        doc_freq.update({g for r in rs for g in r})
    ref_len = math.log(float(len(ref_counts)))

    def vectorise(counts: Counter):
        vec = [dict() for _ in range(CIDER_N)]
        norm = np.zeros(CIDER_N)
        length = 0
        for gram, tf in counts.items():
            order = len(gram) - 1
            weight = tf * (ref_len - math.log(max(1.0, doc_freq[gram])))
            vec[order][gram] = weight
            norm[order] += weight * weight
            if order == 1:
                length += tf
        return vec, np.sqrt(norm), length

    scores = np.zeros(len(hyps))
    for i, (hyp, rs) in enumerate(zip(hyp_counts, ref_counts, strict=True)):
        vec, norm, length = vectorise(hyp)
        total = np.zeros(CIDER_N)
        for ref in rs:
            vec_ref, norm_ref, length_ref = vectorise(ref)
            penalty = math.exp(-((length - length_ref) ** 2) / (2 * CIDER_SIGMA ** 2))
            for order in range(CIDER_N):
                value = sum(min(w, vec_ref[order].get(g, 0.0)) * vec_ref[order].get(g, 0.0)
                            for g, w in vec[order].items())
                if norm[order] != 0 and norm_ref[order] != 0:
                    value /= norm[order] * norm_ref[order]
                total[order] += value * penalty
        scores[i] = total.mean() / len(rs) * 10.0
    return scores


def _lcs(a: list[str], b: list[str]) -> int:
    if not a or not b:
        return 0
    previous = [0] * (len(b) + 1)
    for token in a:
        current = [0]
        for j, other in enumerate(b):
            current.append(previous[j] + 1 if token == other else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


def rouge_l(hyps: Sequence[str], refs: Sequence[Sequence[str]]) -> np.ndarray:
    """Per-item ROUGE-L as coco-caption computes it.

    Parameters
    ----------
    hyps : sequence of str
        The captions.
    refs : sequence of sequence of str
        The references of each caption.

    Returns
    -------
    numpy.ndarray
        One score per caption: the best LCS precision and the best LCS recall over its
        references, combined with beta 1.2.

    Examples
    --------
    >>> rouge_l(["a red circle", "a red circle"], [["a red circle"], ["a blue square"]])
    array([1.        , 0.33333333])
    """
    scores = np.zeros(len(hyps))
    for i, (hyp, rs) in enumerate(zip(hyps, refs, strict=True)):
        tokens = tokenize(hyp)
        if not tokens:
            continue
        precision = recall = 0.0
        for ref in rs:
            ref_tokens = tokenize(ref)
            common = _lcs(ref_tokens, tokens)
            precision = max(precision, common / len(tokens))
            recall = max(recall, common / len(ref_tokens) if ref_tokens else 0.0)
        if precision and recall:
            scores[i] = ((1 + ROUGE_BETA ** 2) * precision * recall
                         / (recall + ROUGE_BETA ** 2 * precision))
    return scores


class CharNgrams:
    """Character n-gram counts (orders 1..6, whitespace removed, as sacrebleu's chrF) of a list
    of texts, as one sparse matrix per order: built with numpy, no Python loop over n-grams."""

    def __init__(self, texts: Sequence[str], order: int = CHRF_ORDER):
        stripped = ["".join(str(t).split()) for t in texts]
        lengths = np.fromiter((len(t) for t in stripped), np.int64, len(stripped))
        joined = "".join(stripped)
        codes = np.frombuffer(joined.encode("utf-32-le"), np.uint32).astype(np.int64)
        used = np.zeros(int(codes.max()) + 1 if len(codes) else 1, np.int64)
        used[codes] = 1
        alphabet_size = int(used.sum())
        chars = np.cumsum(used)[codes]  # dense character ids 1..alphabet_size, no sort
        bits = max(1, (alphabet_size + 1).bit_length())
        ends = np.cumsum(lengths)
        doc_of = np.repeat(np.arange(len(texts)), lengths)
        self.order = order
        self.totals = np.zeros((len(texts), order), np.float64)
        self.counts: list[sparse.csr_matrix] = []
        for n in range(1, order + 1):
            self.totals[:, n - 1] = np.maximum(lengths - n + 1, 0)
            starts = np.arange(len(chars) - n + 1) if len(chars) >= n else np.arange(0)
            starts = starts[starts + n <= ends[doc_of[starts]]] if len(starts) else starts
            if n * bits <= 62:  # pack the n characters into one integer key
                keys = np.zeros(len(starts), np.int64)
                for k in range(n):
                    keys = (keys << bits) | chars[starts + k]
                grams = pd.factorize(keys)[0]  # hashing: O(n), no sort
            else:  # very large alphabets: unique rows of the n-character windows
                windows = np.stack([chars[starts + k] for k in range(n)], axis=1)
                grams = np.unique(windows, axis=0, return_inverse=True)[1].ravel()
            width = int(grams.max()) + 1 if len(grams) else 0
            self.counts.append(sparse.csr_matrix(
                (np.ones(len(starts)), (doc_of[starts], grams)), shape=(len(texts), width)))

    def matches(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        """Clipped n-gram matches of each (left, right) pair: pairs x orders."""
        out = np.zeros((len(left), self.order))
        for n, counts in enumerate(self.counts):
            out[:, n] = np.asarray(counts[left].minimum(counts[right]).sum(axis=1)).ravel()
        return out

    def chrf(self, left: np.ndarray, right: np.ndarray, matches: np.ndarray | None = None
             ) -> np.ndarray:
        """sacrebleu sentence chrF (0-100) of texts[left] as hypotheses against texts[right]."""
        matches = self.matches(left, right) if matches is None else matches
        return _chrf_from_counts(self.totals[left], self.totals[right], matches)

    def symmetric_chrf(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        """Mean of chrF in both directions (chrF weighs recall over precision; a distance
        must not care which text comes first)."""
        matches = self.matches(left, right)
        return (_chrf_from_counts(self.totals[left], self.totals[right], matches)
                + _chrf_from_counts(self.totals[right], self.totals[left], matches)) / 2


def _chrf_from_counts(hyp: np.ndarray, ref: np.ndarray, match: np.ndarray) -> np.ndarray:
    both = (hyp > 0) & (ref > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(both, match / np.where(hyp > 0, hyp, 1), 0.0)
        recall = np.where(both, match / np.where(ref > 0, ref, 1), 0.0)
    effective = both.sum(axis=1)
    safe = np.maximum(effective, 1)
    avg_p, avg_r = precision.sum(axis=1) / safe, recall.sum(axis=1) / safe
    factor = CHRF_BETA ** 2
    denom = factor * avg_p + avg_r
    with np.errstate(invalid="ignore", divide="ignore"):
        score = np.where(denom > 0, (1 + factor) * avg_p * avg_r / np.where(denom > 0, denom, 1),
                         0.0)
    return 100 * score


def chrf_distance(texts: Sequence[str] | pd.Series) -> tuple[np.ndarray, callable]:
    """Codes for `texts` and a vectorised distance 1 - symmetric chrF / 100 over code pairs,
    for Krippendorff's alpha on captions. Identical texts are featurised once."""
    codes, unique = pd.factorize(pd.Series(texts, dtype=object))
    ngrams = CharNgrams(list(unique))

    def one_minus_chrf(left: np.ndarray, right: np.ndarray) -> np.ndarray:
        left, right = np.asarray(left, np.int64), np.asarray(right, np.int64)
        low, high = np.minimum(left, right), np.maximum(left, right)
        distinct, back = np.unique(low * len(unique) + high, return_inverse=True)
        a, b = distinct // len(unique), distinct % len(unique)
        return (1 - ngrams.symmetric_chrf(a, b) / 100)[back.ravel()]

    one_minus_chrf.__name__ = "1-chrF"
    return codes, one_minus_chrf
