"""The FastAPI service: ingestion, events, schemas, dead-letter queue, health and metrics.

``create_app(state)`` assembles routers; routers hold no business logic.
"""
