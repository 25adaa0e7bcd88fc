"""Agreement between annotators (data quality, below the models): Krippendorff's alpha, box
units, reliability per kind, annotator and class, the human caption ceiling, re-labelling
studies. Entry: `quality.agreement.jobs.reliability_job`."""
