"""The Designer page's building blocks: pure functions over ``taskloom/v1`` documents.

* :mod:`.docops`: edit a document (add, rename, delete tasks; edge conditions; new documents);
* :mod:`.flowstate`: document <-> streamlit-flow graph state, layout, cycle refusal;
* :mod:`.forms`: forms generated from JSON Schemas (task params, triggers);
* :mod:`.triggers_panel`: trigger helpers (cron descriptions, next firings, webhook URLs) and their panel;
* :mod:`.palette`: the task-type palette.

Everything but the ``render_*`` functions is free of Streamlit and can be unit-tested
directly; ``taskloom/ui/web/views/designer.py`` wires them up. Every edit returns a new document
and touches only what the user changed, so loading a stored document and saving it
unchanged gives the same canonical JSON.
"""
