"""The hub's assembly: the ingest pipeline, the service lifespan, the CLI and the traffic simulator."""
