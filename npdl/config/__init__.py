"""Experiment configs, the one place that loads, validates (once) and reports them.

A config is plain data validated before anything runs (DESIGN principle 5)::

    cfg = config.load("configs/x.yaml", ["optimizer.lr=3e-4"])   # files.py (+ yamlsafe.py)
    config.validate(cfg)                                          # validate.py
    # npdl.experiment builds the objects, inside config.located(...) blocks (crosscheck.py)

Every problem is reported at once as ``file:line: path: message`` in a :class:`ConfigError`.
Library code (optimizers, schedules, layers, the trainer) raises ordinary ``ValueError``/
``TypeError`` (``npdl.schema.ArgumentError`` when it can name the argument); ``located``
turns those into config errors at the key the user wrote.

Modules: ``errors`` (ConfigError, Problem), ``yamlsafe`` (bounded YAML), ``files`` (base:,
--set, locations), ``validate`` (signatures, types, ranges, sizes), ``crosscheck`` (checks
against built objects, schedule fitting).
"""
from npdl.config.crosscheck import check_metrics, check_splits, fit_schedule, located
from npdl.config.errors import ConfigError, Problem, did_you_mean
from npdl.config.files import SECTIONS, Config, deep_merge, from_dict, load, parse_override, set_path
from npdl.config.validate import check_dataclass, check_spec, dataclass_in, validate

__all__ = ["ConfigError", "Problem", "did_you_mean", "Config", "SECTIONS", "load", "from_dict", "deep_merge",
           "parse_override", "set_path", "validate", "check_spec", "check_dataclass", "dataclass_in", "located",
           "check_splits", "check_metrics", "fit_schedule"]
