"""tests/conftest.py: the tests' httpx clients share one default SSL context; any other ``verify`` is theirs."""

from __future__ import annotations

import ssl

import httpx
import httpx._transports.default as httpx_transport


def _context(client: httpx.Client) -> ssl.SSLContext:
    return client._transport._pool._ssl_context  # type: ignore[attr-defined]


def test_default_clients_share_one_context() -> None:
    with httpx.Client() as a, httpx.Client(timeout=3) as b:
        assert _context(a) is _context(b)
    # the seam the conftest patches is still there (without it every client parses the CA bundle again)
    assert httpx_transport.create_ssl_context() is httpx_transport.create_ssl_context()


def test_other_verify_settings_are_left_alone() -> None:
    mine = ssl.create_default_context()
    with httpx.Client(verify=mine) as own, httpx.Client() as shared:
        assert _context(own) is mine and _context(shared) is not mine
    with httpx.Client(verify=False) as a, httpx.Client(verify=False) as b:
        assert _context(a) is not _context(b) and _context(a).verify_mode == ssl.CERT_NONE
    without_env = httpx_transport.create_ssl_context(trust_env=False)
    assert without_env is not httpx_transport.create_ssl_context(trust_env=True)
    assert without_env.verify_mode == ssl.CERT_REQUIRED
