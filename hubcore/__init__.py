"""The hub's core: the domain model, errors, config, component contracts, pipeline wiring and storage.

Nothing in here imports receivers, processors, exporters or the API; they all depend on it.
"""
