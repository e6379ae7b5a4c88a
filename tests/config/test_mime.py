"""Go's mime.ParseMediaType: what it takes, lower-cases and refuses."""

from __future__ import annotations

import pytest

from traefikservice_asgi.config._mime import MediaTypeError, parse_media_type


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("Text/HTML", ("text/html", {})),
        ("text", ("text", {})),  # a type without a subtype is accepted
        ("text/html; Charset=UTF-8", ("text/html", {"charset": "UTF-8"})),
        ('text/html; a="x;y"; b=1;', ("text/html", {"a": "x;y", "b": "1"})),
    ],
)
def test_go_takes_these_media_types(text: str, parsed: tuple[str, dict[str, str]]) -> None:
    assert parse_media_type(text) == parsed


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "mime: no media type"),
        ("text/", "mime: expected token after slash"),
        ("text html", "mime: expected slash after first token"),
        ("a/b/c", "mime: unexpected content after media subtype"),
        ("a/b; c", "mime: invalid media parameter"),
        ("a/b; c=1; c=2", "mime: duplicate parameter name"),
    ],
)
def test_go_refuses_these_media_types(text: str, message: str) -> None:
    with pytest.raises(MediaTypeError, match=message):
        parse_media_type(text)
