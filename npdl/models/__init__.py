"""Model families, one readable file each; importing this package registers them."""
from npdl.models import cnn, mlp, sequential  # noqa: F401
