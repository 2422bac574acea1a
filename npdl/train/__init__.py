"""Training: the Trainer loop (knows no YAML, prints nothing), tasks, metrics, checkpoints."""
