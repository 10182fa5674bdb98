"""The server's small parts without the model or Chroma: the CSV reader, the one error-to-status mapping, the
API-key check, the error bodies and the search request built from SearchOptions."""

from __future__ import annotations

import dataclasses

import pytest

pytest.importorskip("fastapi")

from shortlist.batching import BatcherBusyError  # noqa: E402
from shortlist.errors import (  # noqa: E402
    ConfigError,
    EmbeddingModelMismatchError,
    InputError,
    ShortlistError,
    StoreError,
    TextTooLongError,
)
from shortlist.search.options import OPTION_NAMES, SearchOptions  # noqa: E402
from shortlist.server.auth import ENV_API_KEY, is_authorised, resolve_api_key  # noqa: E402
from shortlist.server.csv_pairs import read_pairs_csv, scored_csv, scored_filename  # noqa: E402
from shortlist.server.errors import ApiError, api_error, error_body, status_of  # noqa: E402
from shortlist.server.models import SearchRequest  # noqa: E402


# ---------------------------------------------------------------------------------------------- CSV
@pytest.mark.parametrize(
    ("raw", "header", "rows", "head"),
    [
        (b"text1,text2\ncat,kitten\na,b\n", "auto", [("cat", "kitten"), ("a", "b")], ("text1", "text2")),
        (b"cat,kitten\n", "auto", [("cat", "kitten")], None),
        (b"cat,kitten\n", "yes", [], ("cat", "kitten")),
        (b"text1,text2\n", "no", [("text1", "text2")], None),
        (b"\xef\xbb\xbfa\tb\nc\td\n", "auto", [("c", "d")], ("a", "b")),  # BOM, tabs, a/b header
        (b"x;y\n\n;\nz;w\n", "no", [("x", "y"), ("z", "w")], None),  # semicolons; blank rows skipped
        (b'"un, deux",trois\n', "no", [("un, deux", "trois")], None),
    ],
)
def test_read_pairs_csv(raw: bytes, header: str, rows: list[tuple[str, str]], head: tuple[str, str] | None) -> None:
    assert read_pairs_csv(raw, header, max_rows=10) == (rows, head)


@pytest.mark.parametrize(
    ("raw", "header", "message"),
    [
        (b"\xff\xfe,b\n", "auto", "not UTF-8 (byte 0)"),
        (b"\n  \n", "auto", "no rows"),
        (b"a,b,c\n", "yes", "header has 3 columns"),
        (b"a,b\nc\n", "no", "Line 2 of the CSV file has 1 columns"),
        (b"text1,text2\na,b\nc,d\ne,f\n", "auto", "3 rows; the limit is 2"),
    ],
)
def test_read_pairs_csv_refuses_with_a_400(raw: bytes, header: str, message: str) -> None:
    with pytest.raises(ApiError) as info:
        read_pairs_csv(raw, header, max_rows=2)
    assert info.value.status == 400 and info.value.param == "file" and message in info.value.message


def test_scored_csv_and_its_name() -> None:
    rows = [("a", "b"), ("c, d", "e")]
    assert scored_csv(rows, [0.5, -0.25], None, None) == 'text1,text2,similarity\na,b,0.500000\n"c, d",e,-0.250000\n'
    with_match = scored_csv(rows, [0.5, -0.25], ("left", "right"), 0.5)
    assert with_match.splitlines() == ["left,right,similarity,match", "a,b,0.500000,yes", '"c, d",e,-0.250000,no']
    assert scored_filename("my pairs (1).csv") == "my_pairs__1_-scored.csv"
    assert scored_filename(None) == "pairs-scored.csv"


# ---------------------------------------------------------------------------------------------- errors
def _chroma_refused() -> StoreError:
    from chromadb.errors import InvalidArgumentError

    try:
        raise InvalidArgumentError("bad where")
    except InvalidArgumentError as cause:
        try:
            raise StoreError("Chroma could not search") from cause
        except StoreError as exc:
            return exc


@pytest.mark.parametrize(
    ("exc", "status", "message"),
    [
        (BatcherBusyError("busy"), 503, "busy"),
        (EmbeddingModelMismatchError("other model"), 409, "other model"),
        (StoreError("disk gone"), 503, "The collection could not be searched: disk gone"),
        (_chroma_refused(), 400, "Chroma refused the request: Chroma could not search"),
        (InputError("empty"), 400, "empty"),
        (TextTooLongError("long"), 400, "long"),
        (ConfigError("k"), 400, "k"),
        (ShortlistError("other"), 400, "other"),
    ],
)
def test_one_mapping_of_errors_to_statuses(exc: ShortlistError, status: int, message: str) -> None:
    assert status_of(exc) == status
    error = api_error(exc, param="collection")
    assert (error.status, error.message, error.param) == (status, message, "collection")
    assert error.headers == ({"Retry-After": "1"} if status == 503 and isinstance(exc, BatcherBusyError) else None)


def test_error_bodies_follow_the_calling_api() -> None:
    assert error_body("/api/embed", 400, "no") == {"error": "no"}
    assert error_body("/health", 503, "busy") == {"error": "busy"}
    assert error_body("/v1/embeddings", 401, "key", "input") == {
        "error": {"message": "key", "type": "authentication_error", "param": "input", "code": None}
    }
    assert error_body("/v1/models", 500, "x")["error"]["type"] == "server_error"
    assert error_body("/v1/models", 418, "x")["error"]["type"] == "invalid_request_error"


# ---------------------------------------------------------------------------------------------- API key
def test_api_key_check() -> None:
    key = b"s3cret"
    assert is_authorised({"authorization": b"Bearer s3cret"}, key)
    assert is_authorised({"authorization": b"bearer   s3cret "}, key)
    assert is_authorised({"x-api-key": b"s3cret"}, key)
    assert not is_authorised({"x-api-key": b"wrong", "authorization": b"Bearer s3cret"}, key)  # X-API-Key first
    assert not is_authorised({"authorization": b"Basic s3cret"}, key)
    assert not is_authorised({}, key)


def test_api_key_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_API_KEY, "  from-env ")
    assert resolve_api_key(None) == "from-env"
    assert resolve_api_key("given") == "given"
    assert resolve_api_key("") is None  # "" turns the key off even when the variable is set
    monkeypatch.setenv(ENV_API_KEY, "   ")
    assert resolve_api_key(None) is None


# ---------------------------------------------------------------------------------------------- search request
def test_search_request_has_every_search_option() -> None:
    assert list(SearchRequest.model_fields) == ["query", *OPTION_NAMES, "collection"]
    request = SearchRequest(query="q", k=3, mode="keyword", max_per_source=1, mmr_lambda=0.2)
    assert request.options() == SearchOptions(k=3, mode="keyword", max_per_source=1, mmr_lambda=0.2)
    defaults = SearchRequest(query="q").options()
    assert dataclasses.replace(defaults, mode=None) == SearchOptions()  # the server's defaults are the options'
    assert defaults.mode == "hybrid"


@pytest.mark.parametrize(
    "bad", [{"k": 0}, {"k": 1001}, {"mode": "fuzzy"}, {"mmr_lambda": 1.5}, {"fetch_k": 0}, {"min_score": 2}]
)
def test_search_request_bounds(bad: dict[str, object]) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        SearchRequest(query="q", **bad)
