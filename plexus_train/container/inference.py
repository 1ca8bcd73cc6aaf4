"""SageMaker PyTorch serving entry (code/inference.py in model.tar.gz): plexus_train's inference handlers."""

from plexus_train.inference import input_fn, model_fn, output_fn, predict_fn

__all__ = ["input_fn", "model_fn", "output_fn", "predict_fn"]
