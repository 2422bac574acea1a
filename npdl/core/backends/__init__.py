"""One small module per array library, for what the Python array API leaves out and npdl uses.

Each backend module has the same names: ``xp`` (the array module), ``to_host`` / ``from_host``,
``coalesce_rows`` (scatter-add of embedding rows), ``add_at``, ``sliding_window_view`` /
``as_strided`` (conv/pool and word2vec windows). ``npdl.core.backend`` picks one per array
(Chainer's ``backends/``). Random numbers on a device come from ``counter_rng`` (pure ``xp``
arithmetic, the same numbers on every device).
"""
