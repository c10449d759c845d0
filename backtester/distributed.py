"""Sweeps on a Dask distributed cluster: the same jobs as on this machine, run by the workers
of an existing cluster, given its scheduler's address (``--scheduler tcp://HOST:8786``).

Dask distributed rather than Ray: it is a pure-Python install of a few MB (Ray's wheel is
hundreds), it runs on the machine's own Python with no daemon but the scheduler, and its
`LocalCluster` gives the tests a real two-worker cluster on 127.0.0.1. The data goes to each
worker once (`scatter(..., broadcast=True)`), every job then refers to the worker's copy. The
workers import this project's modules: start them from a checkout of the same commit (or with
it on PYTHONPATH), as README.md "Sweeps on a cluster" shows.

Dask is an optional dependency (requirements-dask.txt): it is imported only here, only when a
scheduler is given.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from backtester.engine import Result
from backtester.sweep import Job, run_job
from simbroker.market_data import MarketData

CONNECT_TIMEOUT_S = 20


def run_on_cluster(address: str, market: MarketData, tasks: Sequence[tuple[Job, bool]],
                   progress: Callable[[], object], *, timeout_s: float = CONNECT_TIMEOUT_S,
                   ) -> list[tuple[dict[str, Any], Result | None]]:
    """`run_job(market, job, keep)` for every task on the cluster at `address`, in order."""
    try:
        from distributed import Client, as_completed
    except ImportError as exc:
        raise ValueError("--scheduler needs Dask distributed, which is not installed; install "
                         "it with: python -m pip install -r requirements-dask.txt") from exc
    try:
        client = Client(address, timeout=timeout_s)
    except (OSError, TimeoutError) as exc:
        raise ValueError(f"--scheduler {address}: no Dask scheduler answered there within "
                         f"{timeout_s:g} s ({exc}); start one (see README.md, Sweeps on "
                         "a cluster) or correct the address") from exc
    with client:
        if not client.scheduler_info().get("workers"):
            raise ValueError(f"--scheduler {address}: the scheduler has no workers; start "
                             "at least one with: dask worker " + address)
        # hash=False: one key for the data, without hashing a large object to name it.
        data = client.scatter(market, broadcast=True, hash=False)
        futures = [client.submit(run_job, data, job, keep, pure=False) for job, keep in tasks]
        where = {future.key: i for i, future in enumerate(futures)}
        answers: list[Any] = [None] * len(futures)
        for future in as_completed(futures):
            answers[where[future.key]] = future.result()
            progress()
        return answers
