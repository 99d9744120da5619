"""The REST API and the webhook endpoints (FastAPI), served by ``taskloom scheduler``.

Requests become store operations and request rows; the scheduler that serves the API
passes in its wake-up hook, the only way the API reaches runtime.

May import: core and storage. Never runtime or ui.
"""
