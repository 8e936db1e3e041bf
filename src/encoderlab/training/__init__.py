"""Training engine: a model-agnostic Trainer, its config, optimizers, schedules, checkpoints, distributed.

See trainer.py for the Trainer API and entrypoint.py for `run_task`, the driver of every training command.
"""

from .checkpoint import latest_valid_checkpoint, load_checkpoint
from .config import RESUMABLE_KEYS, TrainConfig
from .entrypoint import run_task
from .trainer import Trainer, TrainingDivergedError, TrainingInterrupted, TrainResult

__all__ = [
    "RESUMABLE_KEYS",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "TrainingDivergedError",
    "TrainingInterrupted",
    "latest_valid_checkpoint",
    "load_checkpoint",
    "run_task",
]
