"""A structural LogQL checker (no LogQL parser is installable here: Loki is Go, AGPL, not packaged).

What it checks, for queries the hub ships (rules/loki/*.yaml, Loki panels of the dashboards):
- quotes closed and (), {}, [] balanced outside string literals;
- at least one stream selector; each matcher is ``label op "value"`` with op in = != =~ !~, the
  label is one of the hub's Loki stream labels, regexes compile, and the selector has a matcher
  that does not match the empty string (Loki refuses selectors that match every stream);
- pipeline stages are known (line filters, json/logfmt/..., label filters) and label filters and
  ``by (...)`` use stream labels or labels produced by ``| json`` on a native event
  (top-level fields, ``payload_*``, ``tags_*``);
- range aggregations (count_over_time, rate, ...) carry a ``[duration]``;
- metric queries (required for ruler rules) contain a range aggregation.

    problems = check_logql('sum by (tenant_id) (count_over_time({event_type="security"} | json [5m]))')
    assert problems == []
"""

from __future__ import annotations

import re

STREAM_LABELS = frozenset({"tenant_id", "source_module", "event_type", "severity", "environment"})
#: fields of the native event that `| json` turns into labels (besides payload_* / tags_*)
EVENT_FIELDS = frozenset({"event_id", "timestamp", "schema_version", "correlation_id", "trace_id", "span_id"})
RANGE_FUNCTIONS = frozenset(
    {
        "count_over_time",
        "rate",
        "bytes_over_time",
        "bytes_rate",
        "sum_over_time",
        "avg_over_time",
        "max_over_time",
        "min_over_time",
        "first_over_time",
        "last_over_time",
        "stdvar_over_time",
        "stddev_over_time",
        "quantile_over_time",
        "absent_over_time",
        "rate_counter",
    }
)
AGGREGATIONS = frozenset(
    {"sum", "avg", "min", "max", "count", "stddev", "stdvar", "topk", "bottomk", "sort", "sort_desc"}
)
PARSER_STAGES = frozenset(
    {
        "json",
        "logfmt",
        "unpack",
        "pattern",
        "regexp",
        "line_format",
        "label_format",
        "drop",
        "keep",
        "decolorize",
        "unwrap",
    }
)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|`[^`]*`')
_MATCHER = re.compile(r"^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(\x00\d+\x00)\s*$")
_DURATION = re.compile(r"\[\s*(\d+(ms|s|m|h|d|w|y))+\s*\]|\[\s*\$__\w+\s*\]")


def known_label(name: str) -> bool:
    return (
        name in STREAM_LABELS or name in EVENT_FIELDS or name.startswith(("payload_", "tags_")) or name == "__error__"
    )


def _mask_strings(query: str) -> tuple[str, list[str]]:
    literals: list[str] = []

    def keep(match: re.Match[str]) -> str:
        literals.append(match.group(0)[1:-1])
        return f"\x00{len(literals) - 1}\x00"

    return _STRING.sub(keep, query), literals


def _balanced(text: str) -> list[str]:
    pairs, stack, problems = {")": "(", "]": "[", "}": "{"}, [], []
    for ch in text:
        if ch in "([{":
            stack.append(ch)
        elif ch in pairs and (not stack or stack.pop() != pairs[ch]):
            problems.append(f"unbalanced {ch!r}")
            return problems
    if stack:
        problems.append(f"unclosed {''.join(stack)!r}")
    return problems


_LINE_FILTER = re.compile(r"^\s*(\|=|\|~|!=|!~)\s*\x00\d+\x00")


def _check_pipeline(pipeline: str) -> list[str]:
    """Line filters (allowed right after the selector or another line filter), then `| stage`s."""
    problems: list[str] = []
    rest = pipeline
    while (m := _LINE_FILTER.match(rest)) is not None:
        rest = rest[m.end() :]
    # split the remainder on stage pipes (a `|` not starting a `|=` / `|~` line filter)
    for stage in re.split(r"\|(?![=~])", rest):
        stage = stage.strip()
        if not stage:
            continue
        while (m := _LINE_FILTER.match(stage)) is not None:  # `| json |= "x"` style
            stage = stage[m.end() :].strip()
        if not stage:
            continue
        word = re.match(r"[a-zA-Z_][a-zA-Z0-9_]*", stage)
        if not word:
            problems.append(f"bad pipeline stage {stage!r}")
            continue
        if word.group(0) in PARSER_STAGES:
            continue
        # label filter expression: ident op value [(and|or|,) ident op value]...
        for clause in re.split(r"\s+(?:and|or)\s+|\s*,\s*", stage):
            c = re.match(
                r"^([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|==|=|>=|<=|>|<)\s*(\x00\d+\x00|[\d.]+\w*)$", clause.strip()
            )
            if not c:
                problems.append(f"bad label filter {clause!r}")
            elif not known_label(c.group(1)):
                problems.append(f"unknown label {c.group(1)!r} in filter")
    return problems


def check_logql(query: str, *, metric: bool | None = None) -> list[str]:
    """Problems found in ``query`` (empty = structurally fine). ``metric=True`` requires a metric query."""
    masked, literals = _mask_strings(query)
    if '"' in masked or "`" in masked:
        return ["unterminated string literal"]
    problems = _balanced(masked)
    if problems:
        return problems

    selectors = re.findall(r"\{([^{}]*)\}", masked)
    if not selectors:
        problems.append("no stream selector {...}")
    for selector in selectors:
        non_empty = False
        for part in filter(None, (p.strip() for p in selector.split(","))):
            m = _MATCHER.match(part)
            if not m:
                problems.append(f"bad matcher {part!r}")
                continue
            label, op, ref = m.group(1), m.group(2), literals[int(m.group(3).strip("\x00"))]
            if label not in STREAM_LABELS:
                problems.append(f"unknown stream label {label!r}")
            value = ref.replace("$tenant", ".*").replace("$environment", ".*")
            if op in ("=~", "!~"):
                try:
                    compiled = re.compile(value)
                except re.error as err:
                    problems.append(f"bad regex {value!r}: {err}")
                    continue
                if op == "=~" and not compiled.fullmatch(""):
                    non_empty = True
            elif op == "=" and value:
                non_empty = True
        if not non_empty:
            problems.append(f"selector {{{selector}}} matches the empty string only (Loki rejects it)")

    # pipeline stages: text after a selector up to a range or closing paren
    for pipeline in re.findall(r"\}([^\[\)]*)", masked):
        problems.extend(_check_pipeline(pipeline))

    for name in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", masked):
        for label in filter(None, (x.strip() for x in name.split(","))):
            if not known_label(label):
                problems.append(f"unknown label {label!r} in by/without")

    functions = set(re.findall(r"\b([a-z_]+)\s*\(", masked))
    used_range = functions & RANGE_FUNCTIONS
    for fn in used_range:
        for m in re.finditer(rf"\b{fn}\s*\(", masked):
            depth, i = 1, m.end()
            while i < len(masked) and depth:
                depth += {"(": 1, ")": -1}.get(masked[i], 0)
                i += 1
            if not _DURATION.search(masked[m.end() : i]):
                problems.append(f"{fn}(...) without a [range]")
    unknown = functions - RANGE_FUNCTIONS - AGGREGATIONS - {"by", "without", "vector", "label_replace"}
    if unknown:
        problems.append(f"unknown functions {sorted(unknown)}")
    if metric and not used_range:
        problems.append("a metric query (range aggregation) is required here")
    return problems
