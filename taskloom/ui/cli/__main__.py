"""``python -m taskloom.ui.cli``: the same as the ``taskloom`` command."""

from taskloom.ui.cli.main import main

main()
