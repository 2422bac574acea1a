"""Transformer text classification: ``data`` (``qqp``, ``qqp_sample``, ``qqp_csv``), ``model``
(``transformer_classifier``), ``task`` (``text_classification``), ``commands`` (``npdl predict``),
``bench`` (``npdl bench transformer``)."""
