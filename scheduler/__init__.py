"""The scheduler process: runs queued and triggered workflows, and serves the HTTP API (:mod:`scheduler.api`)."""
