"""The user interfaces: the ``taskloom`` command line (:mod:`taskloom.ui.cli`) and the web app
(:mod:`taskloom.ui.web`), with what both share (masking of the process's own output, the local zone).

May import: the modules here import core and storage; ``ui.cli`` may also import runtime
(it runs workflows in the foreground), ``ui.web`` never does. Neither imports api.
"""
