"""``${env:...}`` in the hub's YAML config, expanded after parsing as the OpenTelemetry Collector does: in
string values only (comments and keys are never touched), ``$$`` a literal ``$``, a value that is exactly one
reference typed as YAML would type it, and an unset variable without default an error naming its key.

    >>> parse_config_text("api: {port: ${env:PORT}}  # ${env:UNSET}", {"PORT": "9000"}).data
    {'api': {'port': 9000}}
"""

from __future__ import annotations

import os
import re
import secrets
from typing import Any

import msgspec
import yaml

from hubcore.errors import ConfigError

__all__ = ["EnvExpansion", "expand_env", "parse_config_text", "substitute_env"]

#: ``$$`` (a literal ``$``) or ``${env:VAR}`` / ``${env:VAR:-default}``, as in the Collector.
_ENV = re.compile(r"\$\$|\$\{env:([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class EnvExpansion(msgspec.Struct, frozen=True):
    """A parsed config with ``${env:...}`` expanded: ``data``, and the text of each whole-value reference.

    ``raw`` maps the key path of every scalar that was exactly one reference and took a YAML type
    (int, float, bool) to the variable's text, so that a ``str`` field gets the text back (``0123``
    stays ``"0123"``), as the Collector's ``AsString`` does.
    """

    data: Any
    raw: dict[tuple[str, ...], str] = {}


def _resolve(m: re.Match[str], env: dict[str, str], path: tuple[str, ...]) -> str:
    if m.group(0) == "$$":
        return "$"
    name, default = m.group(1), m.group(2)
    if name in env:
        return env[name]
    if default is not None:
        return default
    key = ".".join(path)
    raise ConfigError(key, f"environment variable {name} is not set (write ${{env:{name}:-default}})")


def _yaml_typed(text: str) -> int | float | bool | None:
    """``text`` as YAML would type it, when that is an int, float or bool written plainly; else None."""
    if not text or text != text.strip() or "#" in text or "\n" in text:
        return None
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    return value if isinstance(value, (int, float, bool)) else None


def substitute_env(value: str, env: dict[str, str] | None = None, path: tuple[str, ...] = ()) -> str:
    """Expand ``${env:VAR}`` / ``${env:VAR:-default}`` and the escape ``$$`` in one string value.

    An unset variable without default is a :class:`ConfigError` naming ``path``:

    >>> substitute_env("http://${env:HOST:-vm}:8428/$${x}", {})
    'http://vm:8428/${x}'
    """
    env = dict(os.environ) if env is None else env
    return _ENV.sub(lambda m: _resolve(m, env, path), value)


def expand_env(data: Any, env: dict[str, str] | None = None) -> EnvExpansion:
    """Expand env references in the string scalars of parsed YAML (keys untouched), as the Collector does.

    A scalar that is exactly one ``${env:VAR}`` takes the value typed as YAML types it; an embedded one
    is text. Values are never re-parsed as YAML structure, so ``#``, ``: `` and newlines stay verbatim.

    >>> expand_env({"api": {"port": "${env:PORT}", "url": "http://h:${env:PORT}/"}}, {"PORT": "9000"}).data
    {'api': {'port': 9000, 'url': 'http://h:9000/'}}
    """
    env = dict(os.environ) if env is None else env
    raw: dict[tuple[str, ...], str] = {}

    def walk(node: Any, path: tuple[str, ...]) -> Any:
        if isinstance(node, dict):
            return {k: walk(v, (*path, str(k))) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, (*path, str(i))) for i, v in enumerate(node)]
        if not isinstance(node, str) or "$" not in node:
            return node
        text = substitute_env(node, env, path)
        m = _ENV.fullmatch(node)
        if m is not None and m.group(0) != "$$":
            typed = _yaml_typed(text)
            if typed is not None:
                raw[path] = text
                return typed
        return text

    return EnvExpansion(walk(data, ()), raw)


#: A reference as written in the file (with any ``$$`` before it), hidden from the YAML parser.
_REF_IN_TEXT = re.compile(r"\$+\{env:[^}\n]*\}")


def parse_config_text(text: str, env: dict[str, str] | None = None) -> EnvExpansion:
    """Parse YAML ``text``, then expand env references in its string values (see :func:`expand_env`).

    Before parsing, each reference is swapped for an opaque word, so that ``{port: ${env:PORT}}``
    parses in flow style too and a reference in a comment goes away with the comment; the words are
    swapped back in the parsed values and keys, never in the text.
    """
    nonce = secrets.token_hex(4)
    while nonce in text:
        nonce = secrets.token_hex(4)
    refs: list[str] = []

    def hide(m: re.Match[str]) -> str:
        refs.append(m.group(0))
        return f"hubenv{nonce}r{len(refs) - 1}e"

    hidden = re.compile(f"hubenv{nonce}r(\\d+)e")

    def unhide(value: str) -> str:
        return hidden.sub(lambda m: refs[int(m.group(1))], value)

    try:
        data = yaml.safe_load(_REF_IN_TEXT.sub(hide, text)) or {}
    except yaml.YAMLError as exc:
        raise ConfigError("", f"not valid YAML: {unhide(str(exc))}") from None
    if not isinstance(data, dict):
        raise ConfigError("", "the top level must be a mapping (receivers:, processors:, exporters:, service:)")

    def restore(node: Any) -> Any:
        if isinstance(node, dict):
            return {restore(k): restore(v) for k, v in node.items()}
        if isinstance(node, list):
            return [restore(v) for v in node]
        return unhide(node) if isinstance(node, str) and refs else node

    return expand_env(restore(data), env)
