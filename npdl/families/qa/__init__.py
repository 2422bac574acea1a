"""bAbI question answering: ``data`` (``babi``), ``model`` (``lstm_qa``), ``task`` (``qa``)."""
