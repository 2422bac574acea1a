"""``import npdl.functional as F``: re-export of ``npdl.core.functional``."""
from npdl.core.functional import *  # noqa: F401,F403
from npdl.core.functional import __all__  # noqa: F401
