"""The ASGI TLS extension for uvicorn: who a verified client certificate is, in every request's scope.

uvicorn terminates TLS but does not put the peer certificate into the ASGI scope, so over HTTP an mTLS
client could be *verified* but not *identified*. The protocol classes here (what
:func:`hubcore.security.tls.uvicorn_ssl_kwargs` hands uvicorn as ``http=`` and ``ws=``) read the
certificate once per connection and add ``scope["extensions"]["tls"]`` as the ASGI TLS extension
specifies (``client_cert_chain``, ``client_cert_name`` as an RFC 4514 string, ``tls_version``, ...), to
HTTP requests and WebSocket handshakes alike::

    uvicorn.Config(app, ..., **uvicorn_ssl_kwargs(cfg))   # adds http=TlsHttpProtocol, ws=TlsWebSocketProtocol
    subject = client_cert_subject(scope)                  # 'collector-1' (the CN), or None

The certificate is only there when the TLS handshake verified it against ``service.tls.ca_file``
(``client_auth: optional`` or ``require``); a header can never supply it.
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID
from uvicorn.protocols.http.auto import AutoHTTPProtocol
from uvicorn.protocols.websockets.auto import AutoWebSocketsProtocol

__all__ = ["TlsHttpProtocol", "TlsWebSocketProtocol", "client_cert_subject", "tls_extension"]

Scope = MutableMapping[str, Any]
App = Callable[[Scope, Any, Any], Awaitable[None]]

_TLS_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}


def tls_extension(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> dict[str, Any] | None:
    """The ASGI ``tls`` extension of one connection, or None when it is not TLS.

    ``client_cert_name`` is the verified peer certificate's subject as an RFC 4514 string (``CN=collector-1``);
    with no certificate (or one the handshake did not verify) it and ``client_cert_chain`` are empty."""
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    # getpeercert() (parsed) is empty unless the handshake verified the certificate: CERT_NONE never does
    verified = bool(der) and bool(ssl_object.getpeercert())
    chain: list[str] = []
    name: str | None = None
    if verified and der:
        cert = x509.load_der_x509_certificate(der)
        chain = [ssl.DER_cert_to_PEM_cert(der)]
        name = cert.subject.rfc4514_string()
    return {
        "server_cert": None,
        "client_cert_chain": chain,
        "client_cert_name": name,
        "client_cert_error": None,
        "tls_version": _TLS_VERSIONS.get(ssl_object.version() or ""),
        "cipher_suite": None,  # Python's ssl names the cipher but does not give its IANA number
    }


def client_cert_subject(scope: Scope) -> str | None:
    """The common name (CN) of the verified client certificate of this request, or None.

    >>> client_cert_subject({"extensions": {"tls": {"client_cert_name": "CN=collector-1,O=Acme"}}})
    'collector-1'
    >>> client_cert_subject({"type": "http"}) is None
    True
    """
    tls = (scope.get("extensions") or {}).get("tls") or {}
    name = tls.get("client_cert_name")
    if not name:
        return None
    try:
        attrs = x509.Name.from_rfc4514_string(name).get_attributes_for_oid(NameOID.COMMON_NAME)
    except ValueError:
        return None
    return str(attrs[0].value) if attrs else None


def _with_tls(app: App, ext: dict[str, Any]) -> App:
    async def wrapped(scope: Scope, receive: Any, send: Any) -> None:
        if scope.get("type") in ("http", "websocket"):
            extensions = scope.get("extensions")
            scope["extensions"] = {**(extensions or {}), "tls": ext}
        await app(scope, receive, send)

    return wrapped


class _TlsScopeMixin:
    """On connection, read the peer certificate and wrap this connection's ``app`` so that every scope
    it serves carries the ``tls`` extension (uvicorn's protocols all call ``self.app(scope, ...)``)."""

    app: App

    def connection_made(self, transport: Any) -> None:
        ext = tls_extension(transport.get_extra_info("ssl_object"))
        if ext is not None:
            self.app = _with_tls(self.app, ext)
        super().connection_made(transport)  # type: ignore[misc]


class TlsHttpProtocol(_TlsScopeMixin, AutoHTTPProtocol):  # type: ignore[misc,valid-type]
    """uvicorn's HTTP protocol (httptools or h11) with the ASGI TLS extension."""


if AutoWebSocketsProtocol is not None:

    class TlsWebSocketProtocol(_TlsScopeMixin, AutoWebSocketsProtocol):  # type: ignore[misc,valid-type]
        """uvicorn's WebSocket protocol with the ASGI TLS extension (``/ws/events`` over mTLS)."""

else:  # pragma: no cover - uvicorn without websockets or wsproto serves no WebSocket at all
    TlsWebSocketProtocol = None  # type: ignore[assignment,misc]
