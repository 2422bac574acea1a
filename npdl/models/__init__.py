"""The plain models (mlp, cnn, sequential), one readable file each; importing this package registers
them. Model families with their own data, tasks and commands live in ``npdl.families``."""
from npdl.models import cnn, mlp, sequential  # noqa: F401
