"""Leakage-free splits (data quality, below the models): group-aware stratified splits and
folds, eval-set adequacy, the leakage audit (exact/near duplicates, input and identifier
leaks). Entries: `quality.splits.jobs.split_job`, `audit_job`."""
