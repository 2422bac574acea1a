"""Sequence to sequence: ``data`` (``multi30k``, ``copy``, ``reverse``, ``sort``), ``model``
(``transformer_seq2seq``), ``task`` (``seq2seq``), ``decoding`` (greedy and beam search with a KV
cache), ``commands`` (``npdl translate``), ``bench`` (beam-search rows of ``npdl bench transformer``)."""
