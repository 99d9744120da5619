"""``taskloom dask-demo``: a Dask cluster on this machine, to try the dask executor."""

from __future__ import annotations

import signal
import threading

import click

from taskloom.ui.cli.common import _Fail, err, out

__all__ = ["dask_demo"]


@click.command("dask-demo")
@click.option("--port", default=8786, show_default=True, help="Port of the Dask scheduler (on 127.0.0.1).")
@click.option("--workers", default=2, show_default=True, help="Worker processes to start.")
@click.option("--threads", default=2, show_default=True, help="Threads per worker (attempts a worker runs at once).")
def dask_demo(port: int, workers: int, threads: int) -> None:
    """Start a local Dask cluster (a scheduler and worker processes) until Ctrl-C.

    Then, in another terminal:

      taskloom run hello --executor dask --dask-address tcp://127.0.0.1:8786

    or serve with TASKLOOM_DASK_ADDRESS=tcp://127.0.0.1:8786 set, and every
    shell and python task runs on the cluster's workers.
    """
    try:
        from distributed import LocalCluster
    except ImportError:
        raise _Fail("the Dask demo needs dask.distributed: pip install 'taskloom[dask]'") from None
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=threads, processes=True, host="127.0.0.1",
            scheduler_port=port, dashboard_address=None,
        )
    except OSError as exc:
        raise _Fail(f"cannot start a Dask scheduler on 127.0.0.1:{port}: {exc} (choose another --port)") from None
    with cluster:
        address = cluster.scheduler_address
        out.print(f"Dask scheduler on {address} with {workers} worker process(es); Ctrl-C stops it")
        out.print(f"try: taskloom run hello --executor dask --dask-address {address}")
        stop.wait()
        err.print("stopping the Dask cluster")
