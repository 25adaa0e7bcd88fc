"""The gold labels (data quality, below the models): consensus by vote and adjudication by a
reviewer. Entry: `quality.gold.jobs.consensus_job`."""
