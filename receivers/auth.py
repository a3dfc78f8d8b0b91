"""Authentication and authorization for the receivers that are not FastAPI routes.

* :class:`GrpcAuthInterceptor` wraps every gRPC method (OTLP export, the event stream): it reads the
  ``authorization`` metadata (and the mTLS peer), authenticates, applies the events quota, decides
  ``events:write`` on the requested tenant, audits denials (the requested tenant as the target), and puts
  the principal in :data:`hubcore.security.context.CURRENT_PRINCIPAL` for the servicer.
* :class:`HttpAuthMiddleware` does the same for the OTLP/HTTP app.

Both use :class:`ReceiverGuard`, so the rules are the API's (one decision function).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc

from hubcore.security.asgi_tls import client_cert_subject
from hubcore.security.audit import AuditLog
from hubcore.security.authenticator import Authenticator
from hubcore.security.context import CURRENT_PRINCIPAL
from hubcore.security.principal import AuthError, Principal
from hubcore.security.quotas import Quotas
from hubcore.security.rbac import Resource, decide
from hubcore.security.tls import subject_from_grpc_context
from hubcore.tenants import TENANT_RULE, is_tenant

TENANT_KEY = "x-scope-orgid"


class Refused(Exception):
    """Why a receiver request is refused: ``status`` is the HTTP status (400, 401, 403 or 429)."""

    def __init__(self, status: int, code: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.retry_after = retry_after


@dataclass
class ReceiverGuard:
    authenticator: Authenticator
    quotas: Quotas | None
    audit: AuditLog | None
    realm: str = "llm-analytics-hub"

    def admit(
        self, authorization: str | None, requested_tenant: str | None, *, receiver: str,
        client_cert_subject: str | None = None, source_ip: str | None = None,
    ) -> Principal:  # fmt: skip
        """The principal allowed to write to ``requested_tenant`` (or its own), else :class:`Refused`.

        ``requested_tenant`` is ``X-Scope-OrgID`` (HTTP header / gRPC metadata); with a credential it is the
        only way to name another tenant (resource attributes in the data are ignored, see
        :func:`hubcore.security.context.tenant_for_write`). A refusal is audited with the caller's tenant
        (``tenant_id``) and the requested one (``target_tenant_id``): filtering by either tenant finds it. An
        admitted write into another tenant (a platform admin's) is audited too; writes into the caller's
        own tenant are not (their volume is the ingest rate; the pipeline counts them)."""
        try:
            p = self.authenticator.authenticate(authorization, client_cert_subject=client_cert_subject)
        except AuthError as exc:
            raise Refused(401, exc.code, str(exc)) from None
        if requested_tenant is not None and not is_tenant(requested_tenant):
            # before any decision or audit record: "_hub", "*" or "../x" is no tenant anyone may write to
            raise Refused(400, "invalid_tenant", f"{TENANT_KEY} must be {TENANT_RULE}")
        tenant = requested_tenant or p.tenant_id
        d = decide(p, "events:write", Resource("events", tenant), cross_tenant=tenant != p.tenant_id)
        if not d.allowed:
            if self.audit is not None:
                # tenant_id: the caller's tenant (who); target_tenant_id: the tenant it asked to write into
                self.audit.record(p, "events:write", f"{receiver}/{tenant}", target_tenant_id=tenant,
                                  outcome="denied", reason=d.reason, source_ip=source_ip)  # fmt: skip
            raise Refused(403, "forbidden", d.reason)
        if self.quotas is not None:
            retry = self.quotas.check_request(p)
            if retry is not None:
                raise Refused(429, "rate_limited", f"too many requests for {p.subject}", retry)
        if tenant != p.tenant_id and self.audit is not None:
            # a write into another tenant (a platform admin's) is recorded, like the API records it;
            # chained but not fsynced one by one (a stream of batches)
            self.audit.record(p, "events:write", f"{receiver}/{tenant}", target_tenant_id=tenant, outcome="allowed",
                              reason=d.reason, source_ip=source_ip, sync=False)  # fmt: skip
        return p


_GRPC_STATUS = {400: grpc.StatusCode.INVALID_ARGUMENT, 401: grpc.StatusCode.UNAUTHENTICATED,
                403: grpc.StatusCode.PERMISSION_DENIED, 429: grpc.StatusCode.RESOURCE_EXHAUSTED}  # fmt: skip


class GrpcAuthInterceptor(grpc.aio.ServerInterceptor):
    """Wraps every unary-unary and stream-stream handler of the server it is installed on."""

    def __init__(self, guard: ReceiverGuard, receiver_for: Callable[[str], str]) -> None:
        self.guard = guard
        self.receiver_for = receiver_for

    async def intercept_service(self, continuation: Any, handler_call_details: Any) -> Any:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        receiver = self.receiver_for(handler_call_details.method)
        guard = self.guard

        async def admit(context: grpc.aio.ServicerContext) -> Principal:
            meta = {k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}
            try:
                return guard.admit(
                    meta.get("authorization"),
                    meta.get(TENANT_KEY) or None,
                    receiver=receiver,
                    client_cert_subject=subject_from_grpc_context(context),
                    source_ip=context.peer(),
                )
            except Refused as r:  # fmt: skip
                if r.retry_after is not None:
                    context.set_trailing_metadata((("retry-after", str(max(1, round(r.retry_after)))),))
                await context.abort(_GRPC_STATUS[r.status], str(r))
                raise AssertionError("unreachable") from None

        if handler.unary_unary is not None:
            inner = handler.unary_unary

            async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                CURRENT_PRINCIPAL.set(await admit(context))
                return await inner(request, context)

            return grpc.unary_unary_rpc_method_handler(
                unary, request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )  # fmt: skip
        if handler.stream_stream is not None:
            inner_s = handler.stream_stream
            if inspect.isasyncgenfunction(inner_s):

                async def stream_gen(request_iterator: Any, context: grpc.aio.ServicerContext) -> Any:
                    CURRENT_PRINCIPAL.set(await admit(context))
                    async for item in inner_s(request_iterator, context):
                        yield item

                behaviour: Any = stream_gen
            else:

                async def stream_coro(request_iterator: Any, context: grpc.aio.ServicerContext) -> Any:
                    CURRENT_PRINCIPAL.set(await admit(context))
                    return await inner_s(request_iterator, context)

                behaviour = stream_coro
            return grpc.stream_stream_rpc_method_handler(
                behaviour, request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )  # fmt: skip
        return handler  # no other shapes are served; nothing unauthenticated slips through them either


def grpc_receiver_name(method: str) -> str:
    return "grpc_stream" if "EventIngestionService" in method else "otlp_grpc"


class HttpAuthMiddleware:
    """ASGI middleware for the OTLP/HTTP app: 401/403/429 before the body is read."""

    def __init__(self, app: Any, guard: ReceiverGuard, receiver: str = "otlp_http") -> None:
        self.app = app
        self.guard = guard
        self.receiver = receiver

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        client = scope.get("client")
        try:
            p = self.guard.admit(
                headers.get("authorization"), headers.get(TENANT_KEY) or None, receiver=self.receiver,
                client_cert_subject=client_cert_subject(scope), source_ip=client[0] if client else None,
            )  # fmt: skip
        except Refused as r:
            out_headers = [(b"content-type", b"application/json")]
            if r.status == 401:
                out_headers.append((b"www-authenticate", f'Bearer realm="{self.guard.realm}"'.encode()))
            if r.retry_after is not None:
                out_headers.append((b"retry-after", str(max(1, round(r.retry_after))).encode()))
            # OTLP/HTTP error bodies are google.rpc.Status: ``code`` is the gRPC status code, as the receiver's own
            body = json.dumps({"code": _GRPC_STATUS[r.status].value[0], "message": str(r)}).encode()
            await send({"type": "http.response.start", "status": r.status, "headers": out_headers})
            await send({"type": "http.response.body", "body": body})
            return
        token = CURRENT_PRINCIPAL.set(p)
        try:
            await self.app(scope, receive, send)
        finally:
            CURRENT_PRINCIPAL.reset(token)
