"""Training: the Trainer loop (knows no YAML, prints nothing), tasks, metrics, checkpoints.

Calling this package trains like ``npdl train``: ``npdl.train(cfg, **overrides) -> Run`` is
``npdl.api.train``. A plain function named ``npdl.train`` could not live beside this package
(importing ``npdl.train.trainer`` rebinds the name to the package), so the package itself is
callable -- Python's documented way to customise a module (a ``types.ModuleType`` subclass as
its ``__class__``) -- and imports the API only when called: ``train`` still knows no YAML.
"""
import sys
import types


class _CallablePackage(types.ModuleType):
    def __call__(self, cfg, overrides=None, **kwargs):
        """``npdl.api.train(cfg, overrides, **kwargs)``: see there."""
        from npdl.api import train

        return train(cfg, overrides, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
