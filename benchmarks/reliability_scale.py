"""Reliability at scale: time and peak memory of `quality.agreement.reliability` on 100k images x 3
annotators x ~4 boxes with captions, and of label alpha at 2000 units x 400 values, ours vs the
`krippendorff` package (same value?). Each case runs in a fresh process so peaks do not mix.

    uv run python benchmarks/reliability_scale.py [--images 100000]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np
import pandas as pd

ANNOTATORS = ("ann_a", "ann_b", "ann_c")
CLASSES = ("red circle", "yellow circle", "blue square", "green square", "green triangle")
WORDS = ("left of", "right of", "above", "below", "next to")


def synthetic_set(n_images: int, seed: int = 0):
    """Each image has ~4 true objects; each annotator sees it, jitters boxes, sometimes misses,
    adds or mislabels one, and writes a caption with occasional word changes."""
    from annotate.tables.schema import TableSet

    rng = np.random.default_rng(seed)
    n_obj = rng.poisson(3.5, n_images) + 1
    image = np.repeat(np.arange(n_images), n_obj)
    x0, y0 = rng.uniform(0, 560, len(image)), rng.uniform(0, 560, len(image))
    size = rng.uniform(20, 80, len(image))
    label = rng.integers(0, len(CLASSES), len(image))
    frames = []
    for k, name in enumerate(ANNOTATORS):
        keep = rng.random(len(image)) > 0.03 + 0.05 * k
        jitter = rng.normal(0, 2 + 2 * k, (len(image), 4))
        coords = np.stack([x0, y0, x0 + size, y0 + size], axis=1) + jitter
        coords = np.clip(coords, 0, 640)
        coords[:, 2:] = np.maximum(coords[:, 2:], coords[:, :2] + 1)
        wrong = rng.random(len(image)) < 0.02 + 0.02 * k
        labels = np.where(wrong, rng.integers(0, len(CLASSES), len(image)), label)
        frames.append(pd.DataFrame({
            "image_id": image[keep].astype(str), "annotator": name,
            "object_id": np.arange(len(image))[keep].astype(str),
            "label": np.asarray(CLASSES)[labels[keep]], "x0": coords[keep, 0],
            "y0": coords[keep, 1], "x1": coords[keep, 2], "y1": coords[keep, 3],
            "source": "human"}))
    boxes = pd.concat(frames, ignore_index=True)
    first = np.asarray(CLASSES)[label[np.r_[0, np.cumsum(n_obj)[:-1]]]]
    second = np.asarray(CLASSES)[rng.integers(0, len(CLASSES), n_images)]
    captions = []
    for name in ANNOTATORS:
        relation = np.asarray(WORDS)[rng.integers(0, len(WORDS), n_images)]
        article = np.where(rng.random(n_images) < 0.5, "a ", "the ")
        text = (pd.Series(article) + first + " " + relation + " " + article + second).tolist()
        text = [_typo(t, rng) if rng.random() < 0.6 else t for t in text]  # mostly unique
        captions.append(pd.DataFrame({"image_id": np.arange(n_images).astype(str),
                                      "annotator": name, "caption": text, "source": "human"}))
    ids = np.arange(n_images).astype(str)
    return TableSet(
        images=pd.DataFrame({"image_id": ids, "path": pd.Series(ids) + ".jpg", "width": 640,
                             "height": 640}),
        annotations=pd.DataFrame({"image_id": np.tile(ids, len(ANNOTATORS)),
                                  "annotator": np.repeat(ANNOTATORS, n_images),
                                  "source": "human", "lead_time": 20.0}),
        boxes=boxes, captions=pd.concat(captions, ignore_index=True), labels=list(CLASSES))


def _typo(text: str, rng: np.random.Generator) -> str:
    """Swap two neighbouring characters and append a short random word: a distinct caption."""
    k = int(rng.integers(0, len(text) - 1))
    tail = "".join(rng.choice(list("abcdefghij"), 4))
    return f"{text[:k]}{text[k + 1]}{text[k]}{text[k + 2:]} {tail}"


def label_matrix(seed: int = 0) -> np.ndarray:
    """2000 units x 5 coders, 400 values: a coder mostly agrees with the unit's true value."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 400, 2000)
    matrix = np.where(rng.random((5, 2000)) < 0.8, truth, rng.integers(0, 400, (5, 2000)))
    matrix = matrix.astype(float)
    matrix[rng.random(matrix.shape) < 0.1] = np.nan
    return matrix


def run_case(case: str, images: int) -> dict:
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if case == "reliability":
        from quality.agreement.reliability import reliability

        ts = synthetic_set(images)
        baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.perf_counter()
        result = reliability(ts)
        seconds = time.perf_counter() - start
        value = {k: round(a.alpha, 4) for k, a in result.alphas.items()}
        extra = {"boxes": len(ts.boxes), "captions": len(ts.captions),
                 "distinct_captions": int(ts.captions.caption.nunique())}
    else:
        matrix = label_matrix()
        start = time.perf_counter()
        if case == "ours":
            from quality.agreement.alpha import alpha

            coder, unit = np.nonzero(~np.isnan(matrix))
            value = alpha(unit, matrix[coder, unit], "nominal", n_boot=0).alpha
        else:
            import krippendorff

            value = krippendorff.alpha(matrix, level_of_measurement="nominal")
        seconds = time.perf_counter() - start
        extra = {}
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"case": case, "seconds": seconds, "peak_mb": peak / 1024,
            "peak_above_start_mb": (peak - baseline) / 1024, "value": value, **extra}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.images)))
        return
    results = {}
    for case in ("reliability", "ours", "package"):
        done = subprocess.run([sys.executable, __file__, "--case", case, "--images",
                               str(args.images)], capture_output=True, text=True, check=True)
        results[case] = json.loads(done.stdout.strip().splitlines()[-1])
    r = results["reliability"]
    print(f"reliability, {args.images} images x {len(ANNOTATORS)} annotators, {r['boxes']} "
          f"boxes, {r['captions']} captions ({r['distinct_captions']} distinct): "
          f"{r['seconds']:.1f} s, peak "
          f"{r['peak_above_start_mb']:.0f} MB above the loaded tables; alphas {r['value']}")
    ours, package = results["ours"], results["package"]
    print("label alpha, 2000 units x 400 values (nominal):")
    for name, x in (("ours", ours), ("krippendorff", package)):
        print(f"  {name:13} alpha {x['value']:.10f}  {x['seconds']:6.2f} s  peak "
              f"{x['peak_above_start_mb']:7.0f} MB above start")
    same = abs(ours["value"] - package["value"]) < 1e-9
    ratio = package["peak_above_start_mb"] / max(ours["peak_above_start_mb"], 1)
    print(f"  same value: {same}; memory ratio package/ours: {ratio:.0f}x")


if __name__ == "__main__":
    main()
