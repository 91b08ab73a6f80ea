"""Running the search's jobs on a Dask cluster instead of local processes.

:func:`~nalu_sr.search.find_formula` dispatches its jobs through joblib, so any joblib backend
runs them; this module only opens the Dask client and selects joblib's ``"dask"`` backend.
Seeds follow the jobs, not the workers, so a cluster gives the same formula as ``n_jobs=1``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING

import joblib

from ..errors import MissingDependencyError

if TYPE_CHECKING:
    from distributed import Client

#: Loopback only: a cluster started here must not be reachable from other machines.
LOCAL_HOST = "127.0.0.1"


def _import_distributed():
    try:
        import distributed
    except ImportError as error:
        raise MissingDependencyError(
            "running the search on Dask needs dask.distributed; install it with "
            "pip install 'nalu-sr[dask]'"
        ) from error
    return distributed


#: Seconds a client waits for a scheduler to answer, unless told otherwise.
CONNECT_TIMEOUT = 30.0


@contextmanager
def dask_backend(
    address: str | None = None,
    *,
    n_workers: int = 2,
    timeout: float | None = None,
) -> Iterator[Client]:
    """Run the searches started inside the block on a Dask cluster.

    Parameters
    ----------
    address : str, optional
        Scheduler address, e.g. ``"tcp://10.0.0.5:8786"``. Without one, a cluster of
        ``n_workers`` single-threaded worker processes is started on 127.0.0.1 for the
        block and closed after it.
    n_workers : int
        Worker processes of the cluster started when no ``address`` is given.
    timeout : float, optional
        Seconds to wait for the scheduler to answer (default :data:`CONNECT_TIMEOUT`).

    Yields
    ------
    distributed.Client
        The client the jobs are sent through.

    Raises
    ------
    MissingDependencyError
        When dask.distributed is not installed (an ``ImportError``).
    OSError
        When no scheduler answers at ``address`` within ``timeout`` seconds.

    Notes
    -----
    ``n_jobs=1`` still runs the search in this process; ``n_jobs=-1`` (or any value above
    1) sends its jobs to the cluster, whose threads then set how many run at once.

    Examples
    --------
    >>> from nalu_sr.search.parallel import dask_backend
    >>> with dask_backend("tcp://127.0.0.1:8786"):  # doctest: +SKIP
    ...     result = find_formula(X, y, n_jobs=-1)
    """
    distributed = _import_distributed()
    timeout = CONNECT_TIMEOUT if timeout is None else timeout
    with ExitStack() as stack:
        if address is None:
            cluster = stack.enter_context(
                distributed.LocalCluster(
                    n_workers=n_workers,
                    threads_per_worker=1,
                    processes=True,
                    host=LOCAL_HOST,
                    dashboard_address=None,
                )
            )
            address = cluster.scheduler_address
        try:
            client = stack.enter_context(distributed.Client(address, timeout=timeout))
        except (OSError, TimeoutError) as error:
            raise OSError(
                f"no Dask scheduler answered at {address} within {timeout:g} s; start one "
                "(dask scheduler, then dask worker ADDRESS on each machine) or check the address."
            ) from error
        stack.enter_context(joblib.parallel_config(backend="dask"))
        yield client
