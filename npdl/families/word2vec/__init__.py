"""word2vec (skip-gram, CBOW): ``data`` corpus, subsampling and batches; ``model``; ``task``
(training, analogy evaluation, export); ``ops`` fused kernels; ``commands`` (``npdl neighbors``,
``analogy``, ``export``); ``bench`` (``npdl bench word2vec``)."""
