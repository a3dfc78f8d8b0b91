"""A package's public names imported on first use (PEP 562).

Importing ``analytics.anomaly.cli`` imports ``analytics/anomaly/__init__.py`` first: when that imports every
detector (pandas, then scikit-learn and torch where they are used), ``hub detect --help`` takes a second. With
lazy exports the package's names are still importable as before (``from analytics.anomaly import
AnomalyDetector``), but each submodule is imported when one of its names is first asked for::

    # in a package's __init__.py
    from typing import TYPE_CHECKING, Any

    from hubcore.lazy import lazy_attribute

    if TYPE_CHECKING:  # what type checkers and readers see
        from analytics.anomaly.ensemble import AnomalyDetector

    _SOURCES = {"AnomalyDetector": "ensemble"}  # name -> submodule that defines it
    __all__ = ["AnomalyDetector"]

    if not TYPE_CHECKING:  # hidden from mypy, which would otherwise accept any misspelt name

        def __getattr__(name: str) -> Any:
            return lazy_attribute(__name__, _SOURCES, name)

This module imports nothing but :mod:`importlib` and :mod:`sys`.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping
from typing import Any


def lazy_attribute(package: str, sources: Mapping[str, str], name: str) -> Any:
    """``name`` of ``package``, from the submodule ``sources[name]`` names (relative to the package);
    cached in the package so that the next lookup is a plain attribute. Raises ``AttributeError`` for a
    name it does not know, as a module does (``from package import submodule`` then imports the submodule)."""
    module = sources.get(name)
    if module is None:
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{package}.{module}"), name)
    setattr(sys.modules[package], name, value)
    return value
