"""The request URL as Go's ``net/url`` holds it (middlewares/_url.py)."""

from __future__ import annotations

import itertools

import pytest

from traefikservice_asgi.middlewares._url import RequestURL, clean_segments, go_clean


@pytest.mark.parametrize(
    ("path", "clean"),
    [  # Go's path.Clean tests (src/path/path_test.go), the rooted and relative ones
        ("", "."),
        ("abc", "abc"),
        ("abc/def", "abc/def"),
        ("a/b/c", "a/b/c"),
        (".", "."),
        ("..", ".."),
        ("../..", "../.."),
        ("../../abc", "../../abc"),
        ("/abc", "/abc"),
        ("/", "/"),
        ("abc/", "abc"),
        ("abc/def/", "abc/def"),
        ("a/b/c/", "a/b/c"),
        ("./", "."),
        ("../", ".."),
        ("../../", "../.."),
        ("/abc/", "/abc"),
        ("abc//def//ghi", "abc/def/ghi"),
        ("//abc", "/abc"),
        ("///abc", "/abc"),
        ("//abc//", "/abc"),
        ("abc//", "abc"),
        ("abc/./def", "abc/def"),
        ("/./abc/def", "/abc/def"),
        ("abc/.", "abc"),
        ("abc/def/ghi/../jkl", "abc/def/jkl"),
        ("abc/def/../ghi/../jkl", "abc/jkl"),
        ("abc/def/..", "abc"),
        ("abc/def/../..", "."),
        ("/abc/def/../..", "/"),
        ("abc/def/../../..", ".."),
        ("/abc/def/../../..", "/"),
        ("abc/def/../../../ghi/jkl/../../../mno", "../../mno"),
        ("abc/./../def", "def"),
        ("abc//./../def", "def"),
        ("abc/../../././../def", "../../def"),
    ],
)
def test_go_clean_as_gos_own_tests(path: str, clean: str) -> None:
    assert go_clean(path.encode()) == clean.encode()


def test_the_fast_path_agrees_with_the_segment_walk_on_every_short_rooted_path() -> None:
    # go_clean skips the walk when no segment is empty, "." or ".."; every path of up to
    # seven pieces of this alphabet checks that the shortcut changes nothing.
    pieces = [b"/", b"a", b".", b"b", b".."]
    for size in range(1, 8):
        for combo in itertools.product(pieces, repeat=size):
            path = b"/" + b"".join(combo)
            assert go_clean(path) == clean_segments(path, rooted=True), path


def test_with_path_keeps_the_query() -> None:
    url = RequestURL.of(b"/a%2Fb?x=1")
    assert url == RequestURL(b"/a/b", b"/a%2Fb", b"x=1")
    assert url.with_path(b"/c", b"").request_uri() == b"/c?x=1"
