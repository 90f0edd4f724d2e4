"""Extension points the server plugin publishes (added to the kernel's manager via ``add_hookspecs``)."""

from __future__ import annotations

from typing import Any

from comfyvn.hookspecs import hookspec


@hookspec
def server_open_prefixes(kernel: Any) -> list[str] | None:
    """Path prefixes whose requests carry their own authorisation, served without an API token when the
    server is reachable off-loopback (a share link with a signed token in its path, the static files of
    the page it opens).

    Return None or prefixes that start and end with ``/`` and name at least two segments
    (``/api/viewer/web/``); anything else is ignored with a log line. The Host and Origin guards still
    apply, and a request under such a prefix that does carry a token is checked like any other. The
    routes under a prefix must check their own credential (a signature, an expiry) before answering,
    and must not include a route that grants one: everything under the prefix is public.
    """
