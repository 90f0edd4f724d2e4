"""Extension points the jobs plugin publishes (added to the kernel's manager via ``add_hookspecs``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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


@hookspec
def jobs_embedded_resources(kernel: Any) -> dict[str, float] | None:
    """Worker resources the embedded cluster's worker advertises on behalf of a plugin, or None.

    The ComfyUI bridge answers ``{"COMFYUI": n}`` for its ``n`` configured servers, so render jobs
    (which ask for ``COMFYUI: 1``) run on one laptop with nothing to configure, at most ``n`` at a
    time. ``jobs.resources`` in comfyvn.json wins for any name it sets. Asked once, when the embedded
    cluster starts; not used with a configured scheduler (its workers say what they offer).
    """
