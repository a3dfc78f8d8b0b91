"""Receivers: decode, authenticate, tenant, back-pressure (OTLP gRPC/HTTP, native events)."""
