"""The code that runs inside SageMaker's PyTorch containers, and the same code `plexus` runs locally.

It ships in `sourcedir.tar.gz` (training jobs) and in the `code/` of `model.tar.gz` (endpoints) as
`plexus_train/__init__.py` plus this package, so it stands alone: it imports the standard library, torch,
transformers, numpy, onnx, onnxruntime and itself, never plexus_infra, YAML, boto3 or rich
(tests/train/test_container.py runs the extracted archives with those imports refused). Its failures are
`errors.ContainerError`s, which `plexus` prints as one line like its own.

  errors      ContainerError, DataError, DamagedModel
  config      TrainingConfig: the hyperparameters and their defaults, as SageMaker hyperparameters too
  dataset     labelled texts from CSV, checked before any training
  model       BERTClassifier, loading an encoder and checking its tokenizer
  split, metrics, trainer   the training loop
  reporting   what the loop reports (EpochResult, Reporter) and the plain-line reporter of a job's log
  windows     texts as windows of token ids, batched: the one place training and inference tokenize
  frozen      the frozen encoder layers' outputs, computed once per text while training
  precision   bfloat16 autocast where the hardware multiplies it, float32 elsewhere
  artifacts   saving and reloading a trained model directory (the content of model.tar.gz)
  portable    the model's ONNX form, which predictions load without torch or transformers
  entrypoint  script-mode training driven by the SM_* variables
  inference   model_fn / input_fn / predict_fn / output_fn
  bundle      what ships: the entry scripts, requirements.txt and these files
"""
