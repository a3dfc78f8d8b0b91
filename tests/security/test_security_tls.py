"""TLS 1.2+ and mTLS with real handshakes: an ssl-wrapped socket server in a thread, and gRPC."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest

from hubcore.security.config import TlsConfig
from hubcore.security.tls import (
    TlsError,
    client_ssl_context,
    grpc_server_credentials,
    server_ssl_context,
    subject_from_grpc_context,
    subject_from_peercert,
    uvicorn_ssl_kwargs,
)
from tests.security.certs import Pki, make_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def cfg(pki: Pki, client_auth: str = "require", **kw: Any) -> TlsConfig:
    return TlsConfig(enabled=True, cert_file=str(pki.server_cert), key_file=str(pki.server_key),
                     ca_file=str(pki.ca), client_auth=client_auth, **kw).validate()  # type: ignore[arg-type]  # fmt: skip


class EchoServer:
    """Accepts TLS connections one by one; records the peer's CN or the handshake error."""

    def __init__(self, ctx: ssl.SSLContext) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.ctx = ctx
        self.results: list[str] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                raw, _ = self.sock.accept()
            except OSError:
                return
            raw.settimeout(5)
            try:
                with self.ctx.wrap_socket(raw, server_side=True) as conn:
                    self.results.append(f"ok:{subject_from_peercert(conn.getpeercert())}:{conn.version()}")
                    conn.sendall(conn.recv(64))
            except (ssl.SSLError, OSError) as exc:
                self.results.append(f"error:{exc}")

    def wait_for(self, count: int, timeout: float = 5.0) -> list[str]:
        """The results once ``count`` are in (the server thread records a refusal after the client
        has already seen it; reading at once races with it)."""
        deadline = time.monotonic() + timeout
        while len(self.results) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return list(self.results)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def server(pki: Pki) -> Iterator[EchoServer]:
    s = EchoServer(server_ssl_context(cfg(pki)))
    yield s
    s.close()


def talk(port: int, ctx: ssl.SSLContext) -> bytes:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        ctx.wrap_socket(raw, server_hostname="localhost") as s,
    ):
        s.sendall(b"ping")
        return s.recv(64)


def test_mtls_good_client(server: EchoServer, pki: Pki) -> None:
    ctx = client_ssl_context(str(pki.ca), cert_file=str(pki.client_cert), key_file=str(pki.client_key))
    assert talk(server.port, ctx) == b"ping"
    assert server.wait_for(1)[-1].startswith("ok:collector-1:TLSv1.")


def test_mtls_refuses_no_cert_and_rogue_cert(server: EchoServer, pki: Pki) -> None:
    for ctx in (client_ssl_context(str(pki.ca)),
                client_ssl_context(str(pki.ca), cert_file=str(pki.rogue_cert), key_file=str(pki.rogue_key))):  # fmt: skip
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            talk(server.port, ctx)  # TLS 1.3 reports the refusal on first read
    results = server.wait_for(2)
    assert len(results) == 2 and all(r.startswith("error:") for r in results)


def test_client_refuses_server_from_unknown_ca(pki: Pki, tmp_path: Path) -> None:
    other = make_pki(tmp_path / "other")
    s = EchoServer(server_ssl_context(cfg(pki, client_auth="none")))
    try:
        with pytest.raises(ssl.SSLCertVerificationError):
            talk(s.port, client_ssl_context(str(other.ca)))
        assert talk(s.port, client_ssl_context(str(pki.ca))) == b"ping"
    finally:
        s.close()


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion:DeprecationWarning")
def test_tls_1_1_refused(pki: Pki) -> None:
    s = EchoServer(server_ssl_context(cfg(pki, client_auth="none")))
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.load_verify_locations(str(pki.ca))
    old.set_ciphers("DEFAULT:@SECLEVEL=0")
    old.minimum_version = ssl.TLSVersion.TLSv1
    old.maximum_version = ssl.TLSVersion.TLSv1_1
    try:
        with pytest.raises(ssl.SSLError):
            talk(s.port, old)
        ok = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ok.load_verify_locations(str(pki.ca))
        ok.maximum_version = ssl.TLSVersion.TLSv1_2
        assert talk(s.port, ok) == b"ping" and s.results[-1].endswith("TLSv1.2")
    finally:
        s.close()
    assert s.results[0].startswith("error:") and "protocol" in s.results[0].lower(), s.results[
        0
    ]  # refused by the server


def test_clear_errors_for_bad_files(pki: Pki, tmp_path: Path) -> None:
    with pytest.raises(TlsError, match=r"service.tls.cert_file: file '.*nope.crt' does not exist"):
        server_ssl_context(TlsConfig(enabled=True, cert_file=str(tmp_path / "nope.crt"), key_file=str(pki.server_key)))
    with pytest.raises(TlsError, match=r"service\.tls\.key_file: the certificate and key do not load or do not match"):
        server_ssl_context(TlsConfig(enabled=True, cert_file=str(pki.server_cert), key_file=str(pki.client_key)))
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    with pytest.raises(TlsError, match=r"service\.tls\.ca_file: not a PEM CA bundle"):
        server_ssl_context(TlsConfig(enabled=True, cert_file=str(pki.server_cert), key_file=str(pki.server_key),
                                     ca_file=str(garbage), client_auth="optional"))  # fmt: skip
    assert uvicorn_ssl_kwargs(TlsConfig()) == {}
    factory = uvicorn_ssl_kwargs(cfg(pki))["ssl_context_factory"]
    assert factory(None, None).minimum_version == ssl.TLSVersion.TLSv1_2


def test_grpc_mtls(pki: Pki) -> None:
    seen: list[str | None] = []

    def echo(request: bytes, context: grpc.ServicerContext) -> bytes:
        seen.append(subject_from_grpc_context(context))
        return request

    handler = grpc.method_handlers_generic_handler("test.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(echo)})
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_secure_port("127.0.0.1:0", grpc_server_credentials(cfg(pki)))
    server.start()
    try:

        def call(cert: Path | None, key: Path | None) -> bytes:
            creds = grpc.ssl_channel_credentials(
                root_certificates=pki.ca.read_bytes(),
                private_key=key.read_bytes() if key else None,
                certificate_chain=cert.read_bytes() if cert else None,
            )
            with grpc.secure_channel(f"localhost:{port}", creds) as ch:
                return bytes(ch.unary_unary("/test.Echo/Echo")(b"hi", timeout=5))

        assert call(pki.client_cert, pki.client_key) == b"hi"
        assert seen == ["collector-1"]
        for cert, key in ((None, None), (pki.rogue_cert, pki.rogue_key)):
            with pytest.raises(grpc.RpcError) as ei:
                call(cert, key)
            assert ei.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
    finally:
        server.stop(None)
