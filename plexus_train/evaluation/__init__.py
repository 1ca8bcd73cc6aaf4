"""`plexus evaluate accuracy`: a trained score measured on labelled data, and a report a person can look at.

  metrics.py      the figures (accuracy, Gwet's AC1, precision/recall/F1, confusion, calibration): pure functions
  sampling.py     the seeded stratified sample of `--number-of-samples`
  predictions.py  answers from the local artifacts, a SageMaker endpoint or a served model's URL, batch by batch
  document.py     the versioned JSON document (`--json-only`, metrics.json)
  figures.py      the matplotlib figures as PNG bytes (Agg, no display)
  report.py       the self-contained report.html
  run.py          one evaluation: data → sample → predictions → figures → files under models/{sc}/{s}/evaluations/
  view.py         what a person reads on the console
  command.py      the argparse registration and the command (imports nothing heavy until it runs)

Nothing here imports torch, transformers, matplotlib or boto3 at module level.
"""
