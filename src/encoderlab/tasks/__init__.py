"""Tasks: plain functions over the shared Trainer, one per file (pretrain_mlm, ...)."""
