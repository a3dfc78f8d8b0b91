"""Processors: validate → normalise → enrich → dedup → map to OTel signals."""
