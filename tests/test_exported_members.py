"""The public surface is exactly what ``__all__`` names, sorted."""

from __future__ import annotations

import asynccfn


def test_all_lists_the_public_names_sorted() -> None:
    public = {name for name in vars(asynccfn) if not name.startswith("_")}
    not_api = {"annotations", "journal", "local", "compat", "cli", "testing", "examples"}
    assert set(asynccfn.__all__) == public - not_api
    assert asynccfn.__all__ == sorted(asynccfn.__all__)


def test_request_repr_never_shows_the_response_url() -> None:
    from asynccfn._protocol import parse_request
    from tests.support import event_for

    url = "https://bucket.s3.amazonaws.com/key?X-Amz-Signature=secret-signature"
    hosts = frozenset({"bucket.s3.amazonaws.com"})
    request = parse_request(event_for("create", url), allowed_hosts=hosts)
    assert "secret-signature" not in repr(request) and "secret-signature" not in str(request)
