"""Shared by every test directory: one default SSL context for the tests' httpx clients.

httpx builds a new SSL context for every client, parsing the whole CA bundle (40-80 ms on the 2-core CI
machine), and ``httpx.get``/``httpx.post`` make a client per call: the suite's few thousand such calls
spent minutes there, although they speak plain HTTP to loopback. The default context (``verify=True``, no
client certificate) depends only on ``trust_env`` and the ``SSL_CERT_FILE``/``SSL_CERT_DIR`` it reads, so it
is built once per such key and shared. Any other ``verify`` (an ``SSLContext`` of a TLS test, ``False``) or
a client certificate goes to httpx unchanged, so every TLS check sees exactly the context it asked for.
Subprocesses (``hub run``, ``hub simulate``) do not load this file.
"""

from __future__ import annotations

import os
import ssl
import threading
from typing import Any

import httpx._transports.default as _httpx_transport

_build_ssl_context = getattr(_httpx_transport, "create_ssl_context", None)
_contexts: dict[tuple[bool, str | None, str | None], ssl.SSLContext] = {}
_lock = threading.Lock()


def _shared_default_ssl_context(verify: Any = True, cert: Any = None, trust_env: bool = True) -> ssl.SSLContext:
    assert _build_ssl_context is not None
    if verify is not True or cert is not None:
        return _build_ssl_context(verify=verify, cert=cert, trust_env=trust_env)
    env = (os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")) if trust_env else (None, None)
    key = (trust_env, *env)
    with _lock:
        if key not in _contexts:
            _contexts[key] = _build_ssl_context(verify=True, cert=None, trust_env=trust_env)
        return _contexts[key]


if _build_ssl_context is not None:  # an httpx without this seam builds its contexts as before (only slower)
    _httpx_transport.create_ssl_context = _shared_default_ssl_context  # type: ignore[assignment]
