"""``GET /api/v1/events`` filters (``hubcore.query.events.EventListQuery``): a bad field path is refused
with a message that names the parameter and the rule it broke."""

from __future__ import annotations

import pytest

from hubcore.errors import InvalidParameter
from hubcore.query.events import EventListQuery


@pytest.mark.parametrize(
    ("tags", "payload", "expected"),
    [
        ({}, {"a.b.c.d.e.f": "1"}, "payload.a.b.c.d.e.f: bad field path 'a.b.c.d.e.f': letters, digits, '_' or '-', "
                                  "up to 5 dotted parts"),
        ({"": "x"}, {}, "tags.: bad field path ''"),
        ({}, {"a b": "x"}, "payload.a b: bad field path 'a b'"),
    ],
)  # fmt: skip
def test_bad_field_path_names_the_parameter_and_the_limit(
    tags: dict[str, str], payload: dict[str, str], expected: str
) -> None:
    with pytest.raises(InvalidParameter) as exc:
        EventListQuery(tenant_id="t1", tag_filters=tags, payload_filters=payload).validate()
    assert str(exc.value).startswith(expected)


def test_five_dotted_parts_are_accepted() -> None:
    EventListQuery(tenant_id="t1", payload_filters={"a.b.c.d.e": "1"}, tag_filters={"team": "x"}).validate()
