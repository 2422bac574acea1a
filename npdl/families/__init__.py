"""Model families, one folder each, holding everything only that family needs.

    word2vec/             skip-gram and CBOW: corpus pipeline, model, task, fused ops, commands, bench
    language_model/       recurrent and decoder-only Transformer LMs: streams, models, tasks, sampling
    qa/                   bAbI question answering: data, the LSTM reader, task
    text_classification/  the Transformer classifier on QQP pairs: data, model, task, ``npdl predict``
    seq2seq/              the encoder-decoder Transformer: Multi30k and synthetic data, model, task,
                          greedy/beam decoding, ``npdl translate``

Each folder uses the same file names: ``data.py`` (datasets), ``model.py`` (or one file per
architecture), ``task.py``, ``commands.py`` (CLI commands), ``bench.py``. A family imports
``core``, ``nn``, ``optim``, ``train`` and ``data``, never another family; nothing imports a family
but ``npdl.experiment`` (its registries) and ``npdl.cli`` (its commands), each by explicit name.
Importing this package imports no family.
"""
