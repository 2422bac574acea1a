"""Training: the Trainer loop (a step plus extensions; knows no YAML, prints nothing), tasks,
metrics, checkpoints, health statistics. ``npdl.fit`` (``npdl/api.py``) drives it from Python."""
