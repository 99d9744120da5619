"""User interfaces: the ``taskloom`` command line (``ui.cli``)."""
