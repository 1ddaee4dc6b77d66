"""When and where zsbench may use the network: the offline switches, the URL policy, and a fast reachability check.

zsbench fetches datasets and weights that are not on this machine (`zsbench.data.acquire`,
`zsbench.models.hub`). Every fetch first asks `require_online` (offline: a one-line `OfflineError`
naming the command that would fetch the missing thing, and no socket is ever opened), then
`check_reachable` (a host that cannot be reached fails within `REACH_TIMEOUT` seconds, in one line
naming the host and the offline alternative, instead of hanging in DNS or in a library's retries).

Offline is asked for by ``--offline`` (`go_offline`), ``ZSBENCH_OFFLINE=1`` or huggingface_hub's own
``HF_HUB_OFFLINE=1`` (and transformers' ``TRANSFORMERS_OFFLINE=1``, which huggingface_hub also reads).
"""

from __future__ import annotations

import ipaddress
import os
import socket
import threading
import urllib.request
from urllib.parse import urlsplit

from zsbench.errors import DownloadError, OfflineError

OFFLINE_VARIABLES = ("ZSBENCH_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
# Seconds a host (or its proxy) has to accept a connection, name resolution included.
REACH_TIMEOUT = 10.0
_UNREACHABLE: dict[tuple[str, int], str] = {}


def _truthy(value: str | None) -> bool:
    return (value or "").strip().upper() in ("1", "ON", "YES", "TRUE")


def is_offline() -> bool:
    """True when an offline switch is on (`OFFLINE_VARIABLES`, or `go_offline` earlier in this process)."""
    return any(_truthy(os.environ.get(name)) for name in OFFLINE_VARIABLES)


def go_offline() -> None:
    """Turns every offline switch on, for this process and its children (``--offline``)."""
    os.environ["ZSBENCH_OFFLINE"] = "1"
    forbid_hub_downloads()


def forbid_hub_downloads() -> None:
    """Puts huggingface_hub and transformers in offline mode for this process and its children.

    The environment variables cover modules imported later and child processes; huggingface_hub
    reads its variable once, at import, so an already imported copy is switched directly.
    """
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    try:
        from huggingface_hub import constants
    except ImportError:  # nothing can reach the hub without it
        return
    constants.HF_HUB_OFFLINE = True


def offline_error(missing: str, fetch_hint: str) -> OfflineError:
    """The one-line error for `missing` (what is not on this machine) while offline; `fetch_hint` is the
    command that fetches it where the network is."""
    switches = ", ".join(name for name in OFFLINE_VARIABLES if _truthy(os.environ.get(name)))
    return OfflineError(
        f"{missing}, and zsbench is offline ({switches}): nothing was fetched. "
        f"Fetch it first where the network is reachable: {fetch_hint}"
    )


def require_online(missing: str, fetch_hint: str) -> None:
    """Raises `offline_error(missing, fetch_hint)` when offline; before any socket is opened."""
    if is_offline():
        raise offline_error(missing, fetch_hint)


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str) -> None:
    """Refuses any URL but https (plain http only to a loopback address, as test servers and local mirrors use)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme == "https" and host:
        return
    if parts.scheme == "http" and is_loopback(host):
        return
    raise DownloadError(f"Refusing to fetch {url}: zsbench fetches over https only (plain http only from a loopback address).")


def _connect_target(url: str) -> tuple[str, int, str]:
    """(host, port, description) of what a request to `url` connects to first: its proxy, if one applies."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and not urllib.request.proxy_bypass(host):
        proxy_parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        proxy_host = proxy_parts.hostname or ""
        return proxy_host, proxy_parts.port or 80, f"{host} through the proxy {proxy_host}"
    return host, port, f"{host}:{port}"


def check_reachable(url: str, offline_hint: str, timeout: float = REACH_TIMEOUT) -> None:
    """Fails with one `DownloadError` line, within `timeout` seconds, when `url`'s host (or the proxy the
    environment sets for it) accepts no connection; `offline_hint` says how to work without the network.

    Name resolution runs in a daemon thread, so a resolver that hangs cannot hold the command longer.
    """
    host, port, shown = _connect_target(url)
    if (host, port) in _UNREACHABLE:  # tried already in this process: fail at once, not once per file
        raise DownloadError(_UNREACHABLE[(host, port)])
    outcome: list[BaseException | None] = []

    def connect() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            outcome.append(None)
        except OSError as err:
            outcome.append(err)

    worker = threading.Thread(target=connect, name=f"zsbench-reach-{host}", daemon=True)
    worker.start()
    worker.join(timeout)
    if outcome and outcome[0] is None:
        return
    reason = f"{type(outcome[0]).__name__}: {outcome[0]}" if outcome else f"no answer within {timeout:.0f} s"
    _UNREACHABLE[(host, port)] = (
        f"Cannot reach {shown} ({reason}). Check the network or the proxy (HTTPS_PROXY), or work offline: {offline_hint}"
    )
    raise DownloadError(_UNREACHABLE[(host, port)])
