"""The pure core: what a workflow is and what follows from it, with no I/O, no clock, no environment.

Owns the model and the ``taskloom/v1`` format (``model``, ``schema``, ``validation``,
``issues``), planning (``plan``, graphlib's protocol), state transitions (``states``),
retry and firing arithmetic (``retry``, ``firing``, ``fireplan``: instants are arguments),
templates and masking, the task-type registry and declarations (``registry``, ``specs``),
the journal protocol the runner writes through (``journal``) and the importers.

May import: the standard library (nothing that does I/O) and the pinned pure libraries
(networkx, jsonschema, jinja2, croniter, schedule, jmespath). Nothing else of Taskloom.
"""
