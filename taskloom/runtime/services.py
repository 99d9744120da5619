"""The services tasks get from a runner backed by this store (:class:`taskloom.runtime.tasks.base.TaskServices`)."""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any, Mapping

from taskloom.storage.config import Config
from taskloom.storage.home import files_folder
from taskloom.storage.memory import recall, remember
from taskloom.storage.runs import link_parent_run, subworkflow_depth
from taskloom.storage.secrets import SecretError, SecretStore

if TYPE_CHECKING:
    from taskloom.storage.store import Workspace

__all__ = ["StoreServices", "MAX_NESTING"]

#: How deep sub-workflows may nest; deeper is almost surely a workflow calling itself.
MAX_NESTING = 8


class StoreServices:
    """Secrets, configuration, task memory and sub-workflows for the tasks of one workflow."""

    def __init__(self, workspace: "Workspace", workflow: str, *, cwd: str, owner: str | None) -> None:
        self.ws = workspace
        self.workflow = workflow
        self.cwd = cwd
        self.owner = owner

    def secret(self, name: str) -> str:
        try:
            return SecretStore(self.ws.db, self.ws.home).get(name)
        except SecretError as exc:
            raise LookupError(str(exc)) from None

    def config(self, key: str, default: Any = None) -> Any:
        value = Config(self.ws.db).get(key)
        return default if value is None else value

    def file_roots(self) -> list[str]:
        # the home's files folder is every workflow's own place (never the home itself: it holds the
        # database and the secret key)
        roots = [self.cwd, str(files_folder(self.ws.home)), *Config(self.ws.db).get("file_roots")]
        return [os.path.realpath(os.path.expanduser(r)) for r in roots]

    def home(self) -> str | None:
        files_folder(self.ws.home)  # {{ run.home }}/files is there to write into
        return os.path.abspath(self.ws.home)

    def memory_get(self, task_id: str, key: str, default: Any = None) -> Any:
        return recall(self.ws.db, self.workflow, task_id, key, default)

    def memory_set(self, task_id: str, key: str, value: Any) -> None:
        remember(self.ws.db, self.workflow, task_id, key, value)

    def run_workflow(
        self, name: str, params: Mapping[str, Any], *, cancel: threading.Event, parent_run_id: int
    ) -> tuple[str, dict[str, Any], int]:
        """Run stored workflow ``name`` in this process, linked to its parent; cancel follows the task's."""
        from taskloom.storage.store import UserError

        depth = subworkflow_depth(self.ws.db, parent_run_id)
        if depth >= MAX_NESTING:
            raise LookupError(
                f"cannot run workflow {name!r}: sub-workflows are nested {depth} deep (the limit is {MAX_NESTING});"
                " does a workflow call itself?"
            )
        try:
            target = self.ws.target(name)
            run_id, _ = self.ws.start_run(target, params, owner=self.owner, from_text=False, trigger="subworkflow")
        except UserError as exc:
            raise LookupError(str(exc)) from None
        link_parent_run(self.ws.db, run_id, parent_run_id)
        runners: list[Any] = []
        done = threading.Event()

        def forward_cancel() -> None:
            while not done.is_set():
                if cancel.wait(0.2):
                    for runner in runners:
                        runner.cancel()
                    return

        threading.Thread(target=forward_cancel, name=f"subrun-{run_id}-cancel", daemon=True).start()
        try:
            from taskloom.runtime.execution import execute  # the root builds this runner too

            status = execute(self.ws, run_id, owner=self.owner, on_runner=runners.append, cwd=self.cwd)
        finally:
            done.set()
        record = self.ws.run(run_id)
        return status.value, {t: r.output for t, r in record.tasks.items()}, run_id
