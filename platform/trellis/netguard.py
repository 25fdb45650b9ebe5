"""Outbound HTTP to addresses users typed in, without reaching internal hosts (SSRF).

Webhooks, chat connectors and automation call URLs that an admin or a user
entered.  :func:`request` sends such a call only after every address the host
resolves to has been checked, and then **connects to the checked address**
(DNS pinning: a second lookup, which a hostile DNS server could answer with
``127.0.0.1``, never happens).  For HTTPS the certificate is still verified
against the host name (SNI and hostname check use the name, the TCP
connection the pinned address).

Refused unless the core setting ``allowed_private_networks`` lists them
(CIDRs, e.g. ``127.0.0.0/8``; tests allow loopback this way):

* private (10/8, 172.16/12, 192.168/16, fc00::/7, 100.64/10 shared), loopback
  (127/8, ::1), link-local (169.254/16 — cloud metadata — and fe80::/10),
  multicast, reserved and unspecified addresses;
* IPv6 forms that embed an IPv4 address (IPv4-mapped ``::ffff:10.0.0.1``,
  6to4, Teredo, NAT64 ``64:ff9b::/96``) are judged by the embedded address.

Redirects are not followed (a redirect is a new, unchecked target); the
answer's body is read up to :data:`MAX_BODY` bytes.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping
from urllib.parse import urlsplit

__all__ = ["BlockedTarget", "Response", "check_url", "check_address", "resolve", "request",
           "allowed_networks", "check_syntax"]

#: Bytes of a response body kept (for delivery logs; the rest is discarded).
MAX_BODY = 64 * 1024
DEFAULT_TIMEOUT = 10.0
NAT64 = ipaddress.ip_network("64:ff9b::/96")
SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT, not "private" to Python


class BlockedTarget(ValueError):
    """The URL may not be called: bad scheme, unresolvable, or an internal address."""


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]
    body: bytes
    address: str
    elapsed_ms: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def allowed_networks() -> list[Any]:
    """The networks the admin allowed (core setting ``allowed_private_networks``)."""
    from flask import has_app_context

    if not has_app_context():
        return []
    from trellis.settings import get_settings

    raw = get_settings("core").get("allowed_private_networks") or ""
    return parse_networks(raw)


def parse_networks(raw: str) -> list[Any]:
    """``"127.0.0.0/8, ::1"`` -> networks; raises ``ValueError`` naming a bad entry."""
    out = []
    for part in raw.replace(";", ",").split(","):
        part = part.strip()
        if part:
            try:
                out.append(ipaddress.ip_network(part, strict=False))
            except ValueError:
                raise ValueError(f"{part!r} is not an address or network (CIDR)") from None
    return out


def _embedded_v4(ip: Any) -> Any:
    if ip.version != 6:
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _why_internal(ip: Any) -> str | None:
    for test, what in ((ip.is_loopback, "a loopback"), (ip.is_link_local, "a link-local"),
                       (ip.is_multicast, "a multicast"), (ip.is_unspecified, "an unspecified"),
                       (ip.is_reserved, "a reserved"),
                       (ip.version == 4 and ip in SHARED, "a private"),
                       (ip.is_private, "a private")):
        if test:
            return what
    return None


def check_address(address: str, allowed: Iterable[Any] | None = None) -> None:
    """Raise :class:`BlockedTarget` unless ``address`` is public or explicitly allowed."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    allowed = list(allowed_networks() if allowed is None else allowed)
    inner = _embedded_v4(ip)
    # an IPv6 form of an IPv4 address is judged as that IPv4 address
    for candidate in ([inner] if inner is not None else [ip]):
        what = _why_internal(candidate)
        if what and not any(candidate.version == net.version and candidate in net
                            for net in allowed):
            raise BlockedTarget(f"{address} is {what} address; an admin can allow it in "
                                "the core setting allowed_private_networks")


def check_syntax(url: str) -> tuple[str, str, int]:
    """``(scheme, host, port)`` of an http(s) URL, or :class:`BlockedTarget`."""
    try:
        parts = urlsplit(url or "")
        port = parts.port
    except ValueError as exc:
        raise BlockedTarget(f"Not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise BlockedTarget("Only http:// and https:// URLs can be called.")
    if not parts.hostname:
        raise BlockedTarget("The URL has no host.")
    if parts.username or parts.password:
        raise BlockedTarget("Put credentials in headers, not in the URL.")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (an IP literal resolves to itself)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise BlockedTarget(f"Cannot resolve {host}: {exc.strerror}") from None
    seen: list[str] = []
    for info in infos:
        address = info[4][0]
        if address not in seen:
            seen.append(address)
    if not seen:
        raise BlockedTarget(f"Cannot resolve {host}.")
    return seen


def check_url(url: str, allowed: Iterable[Any] | None = None) -> str:
    """Check ``url`` and return the address to connect to (the first of the host's
    addresses; **all** of them must pass, so a host cannot mix in an internal one)."""
    _, host, port = check_syntax(url)
    allowed = list(allowed_networks() if allowed is None else allowed)
    addresses = resolve(host, port)
    for address in addresses:
        check_address(address, allowed)
    return addresses[0]


def literal_check(url: str, allowed: Iterable[Any] | None = None) -> None:
    """What can be checked without DNS (when a URL is saved): the syntax, and the
    address when the host is an IP literal or ``localhost``."""
    _, host, port = check_syntax(url)
    if host.lower() in ("localhost", "localhost.localdomain") or host.lower().endswith(
            ".localhost"):
        check_address("127.0.0.1", allowed)
        return
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return
    check_address(host, allowed)


def request(method: str, url: str, *, body: bytes | str | None = None,
            headers: Mapping[str, str] | None = None, timeout: float = DEFAULT_TIMEOUT,
            allowed: Iterable[Any] | None = None) -> Response:
    """Send one HTTP request to ``url`` through the guard.

    Raises :class:`BlockedTarget` before connecting when the target is refused,
    and ``urllib3.exceptions.HTTPError`` / ``OSError`` when the call fails.
    """
    import time

    import urllib3

    scheme, host, port = check_syntax(url)
    address = check_url(url, allowed)
    parts = urlsplit(url)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    host_header = host if ":" not in host else f"[{host}]"
    if (scheme, port) not in (("http", 80), ("https", 443)):
        host_header += f":{port}"
    send_headers = {"User-Agent": "Trellis-Webhooks/1", **(headers or {}), "Host": host_header}
    if isinstance(body, str):
        body = body.encode("utf-8")
    pool_timeout = urllib3.Timeout(connect=min(timeout, 5.0), read=timeout)
    if scheme == "https":
        pool: Any = urllib3.HTTPSConnectionPool(
            address, port, timeout=pool_timeout, retries=False, maxsize=1,
            server_hostname=host, assert_hostname=host,
            ssl_context=ssl.create_default_context())
    else:
        pool = urllib3.HTTPConnectionPool(address, port, timeout=pool_timeout, retries=False,
                                          maxsize=1)
    started = time.monotonic()
    try:
        answer = pool.urlopen(method.upper(), path, body=body, headers=send_headers,
                              redirect=False, retries=False, preload_content=False,
                              assert_same_host=False)
        try:
            data = answer.read(MAX_BODY)
        finally:
            answer.release_conn()
            answer.drain_conn()
    finally:
        pool.close()
    return Response(status=answer.status, headers=dict(answer.headers), body=data or b"",
                    address=address, elapsed_ms=int((time.monotonic() - started) * 1000))
