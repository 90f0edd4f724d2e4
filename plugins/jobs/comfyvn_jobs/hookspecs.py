"""Extension points the jobs plugin publishes (added to the kernel's manager via ``add_hookspecs``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from comfyvn.hookspecs import hookspec

if TYPE_CHECKING:
    from .kinds import KindRegistrar


@hookspec
def register_job_kinds(register: KindRegistrar) -> None:
    """Declare the kinds of job a plugin runs: ``register(name, run, description, *, resources=None,
    retries=0, check=None, local=False)``. Returns nothing.

    ``run(ctx, params)`` executes on a Dask worker (in-process for the embedded cluster, in a
    ``comfyvn worker`` process otherwise) with that process's kernel in ``ctx.kernel``; it reports
    progress with ``ctx.report(fraction, message)`` and returns a JSON value (at most 64 KiB encoded)
    kept as the job's result. It may run more than once (a worker dying mid-run makes Dask run it
    again elsewhere), so it must be idempotent by its job id or key. ``check(params)`` runs where the
    job is submitted and returns the params to store or raises `comfyvn.errors.Invalid`;
    ``resources`` (``{"COMFYUI": 1}``) are Dask worker resources every job of the kind asks for.
    ``local=True`` marks a kind whose params name files of the machine that submits it (a CLI export's
    folders): it runs only on the embedded cluster, and ``POST /api/schedule/enqueue`` refuses it.
    Runs once per plugin, the first time a kernel's job kinds are needed.
    """
