"""SageMaker script-mode entry (`sagemaker_program`): runs plexus_train's training from the SM_* variables."""

from plexus_train.entrypoint import main

if __name__ == "__main__":
    raise SystemExit(main())
