"""The ``taskloom`` command line (click): one module per group of commands, ``render`` for the terminal.

May import: core, storage, runtime (``taskloom run`` executes in the foreground, ``scheduler``
and ``serve`` start the service) and the shared ``taskloom.ui`` modules. It starts the API
server (``taskloom.api``) only in ``service``, where the scheduler and the API are composed.
"""
