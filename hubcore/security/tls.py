"""TLS 1.2+ and mTLS for the listeners (uvicorn, gRPC) and for clients (httpx), from ``service.tls``.

    server_ctx = server_ssl_context(cfg)                    # ssl.SSLContext (TLS 1.2+, mTLS if asked)
    uvicorn.Config(app, ..., **uvicorn_ssl_kwargs(cfg))     # uvicorn builds the server from our context
    grpc_server.add_secure_port(addr, grpc_server_credentials(cfg))
    httpx.Client(verify=client_ssl_context(ca_file, cert_file=..., key_file=...))

``client_auth``: ``none`` (server TLS only), ``optional`` (verify a certificate when one is sent),
``require`` (mTLS: no certificate, no connection). Missing or unreadable files raise ``TlsError`` naming
the key (``service.tls.cert_file``) and the path.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hubcore.errors import ConfigError
from hubcore.security.config import TlsConfig

_MIN_VERSION = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


class TlsError(ConfigError):
    """A certificate, key or CA file is missing, unreadable or invalid."""


def _readable(key: str, path: str | None) -> str:
    if not path:
        raise TlsError(key, "is required")
    p = Path(path)
    if not p.is_file():
        raise TlsError(key, f"file {path!r} does not exist")
    if not os.access(p, os.R_OK):
        raise TlsError(key, f"file {path!r} is not readable by this process")
    return str(p)


def server_ssl_context(cfg: TlsConfig, *, key: str = "service.tls") -> ssl.SSLContext:
    """A server context: our certificate, TLS ``min_version``+, client certificates per ``client_auth``."""
    cert = _readable(f"{key}.cert_file", cfg.cert_file)
    pkey = _readable(f"{key}.key_file", cfg.key_file)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = _MIN_VERSION[cfg.min_version]
    try:
        ctx.load_cert_chain(cert, pkey)
    except ssl.SSLError as exc:
        raise TlsError(f"{key}.key_file", f"the certificate and key do not load or do not match: {exc}") from None
    if cfg.client_auth != "none":
        ca = _readable(f"{key}.ca_file", cfg.ca_file)
        try:
            ctx.load_verify_locations(cafile=ca)
        except ssl.SSLError as exc:
            raise TlsError(f"{key}.ca_file", f"not a PEM CA bundle: {exc}") from None
        ctx.verify_mode = ssl.CERT_REQUIRED if cfg.client_auth == "require" else ssl.CERT_OPTIONAL
    return ctx


def client_ssl_context(
    ca_file: str | None = None, *, cert_file: str | None = None, key_file: str | None = None, key: str = "tls"
) -> ssl.SSLContext:
    """A client context (TLS 1.2+, server verified against ``ca_file`` or the system store, optionally
    presenting a client certificate for mTLS) — pass it as ``httpx.Client(verify=ctx)``."""
    ctx = ssl.create_default_context(cafile=_readable(f"{key}.ca_file", ca_file) if ca_file else None)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert_file or key_file:
        try:
            ctx.load_cert_chain(_readable(f"{key}.cert_file", cert_file), _readable(f"{key}.key_file", key_file))
        except ssl.SSLError as exc:
            raise TlsError(f"{key}.key_file", f"the client certificate and key do not load: {exc}") from None
    return ctx


def uvicorn_ssl_kwargs(cfg: TlsConfig) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.Config`` (empty when TLS is off). Builds the context once, now,
    so that a bad file fails at startup with a clear message. The HTTP and WebSocket protocols it names
    put the verified client certificate into each request's scope (the ASGI TLS extension,
    :mod:`hubcore.security.asgi_tls`), which is how mTLS identifies callers over HTTP."""
    if not cfg.enabled:
        return {}
    from hubcore.security.asgi_tls import TlsHttpProtocol, TlsWebSocketProtocol

    ctx = server_ssl_context(cfg)
    factory: Callable[[Any, Any], ssl.SSLContext] = lambda _config, _default: ctx  # noqa: E731
    kwargs: dict[str, Any] = {"ssl_context_factory": factory, "http": TlsHttpProtocol}
    if TlsWebSocketProtocol is not None:
        kwargs["ws"] = TlsWebSocketProtocol
    return kwargs


def grpc_server_credentials(cfg: TlsConfig, *, key: str = "service.tls") -> Any:
    """``grpc.ssl_server_credentials`` for ``add_secure_port``; ``require_client_auth`` for mTLS.
    (gRPC cannot verify an *optional* client certificate: ``optional`` is served as ``none``.)"""
    import grpc

    cert = Path(_readable(f"{key}.cert_file", cfg.cert_file)).read_bytes()
    pkey = Path(_readable(f"{key}.key_file", cfg.key_file)).read_bytes()
    ca = Path(_readable(f"{key}.ca_file", cfg.ca_file)).read_bytes() if cfg.client_auth != "none" else None
    return grpc.ssl_server_credentials(
        [(pkey, cert)], root_certificates=ca, require_client_auth=cfg.client_auth == "require"
    )


def subject_from_peercert(peercert: dict[str, Any] | None) -> str | None:
    """The subject CN of ``SSLSocket.getpeercert()`` (what ``Authenticator`` maps in mtls_subjects)."""
    if not peercert:
        return None
    for rdn in peercert.get("subject", ()):
        for name, value in rdn:
            if name == "commonName":
                return str(value)
    return None


def subject_from_grpc_context(context: Any) -> str | None:
    """The client certificate's CN in a gRPC servicer (``context.auth_context()``), or None."""
    names = context.auth_context().get("x509_common_name") or []
    return names[0].decode() if names else None
