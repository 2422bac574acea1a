"""Language models: ``data`` (``ptb``, ``text`` streams for truncated BPTT), ``alternating``
(synthetic sequences), ``rnn`` (``rnn_lm``), ``transformer`` (``transformer_lm``), ``task``
(``language_model``, ``sequence_lm``), ``sampling``, ``commands`` (``npdl sample``), ``bench``
(``npdl bench lstm``)."""
