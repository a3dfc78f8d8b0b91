"""Checks shared by the tests of modules split for size: a name moved out is still importable from the module
that held it (the very same object), and the old module's ``__all__`` lists the public names moved out.

    >>> check_moved("hub.service", "hub.shutdown", ("UNSERVED_STORE_TIMEOUT",))
    >>> check_listed("hub.service", [("hub.service", "hub.shutdown", ("UNSERVED_STORE_TIMEOUT",))])
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

#: (the module that held the names, the module that holds them now, the names moved)
Moved = tuple[str, str, tuple[str, ...]]


def check_moved(old: str, new: str, names: Sequence[str]) -> None:
    """Each of ``names`` read from ``old`` is the object ``new`` defines."""
    before, after = importlib.import_module(old), importlib.import_module(new)
    for name in names:
        assert getattr(before, name) is getattr(after, name), f"{old}.{name} is not {new}.{name}"


def check_listed(old: str, moved: Sequence[Moved]) -> None:
    """``from <old> import *`` and the linters see the public names moved out (``__all__``), and every name
    listed there exists."""
    module = importlib.import_module(old)
    listed = set(module.__all__)
    assert not [n for n in listed if not hasattr(module, n)]
    public = {n for o, _, names in moved if o == old for n in names if not n.startswith("_")}
    assert public <= listed, sorted(public - listed)
