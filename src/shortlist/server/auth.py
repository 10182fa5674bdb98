"""The API key: where it comes from, which paths do without it, and the check of a request's headers."""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping

from shortlist.server.docs import ASSET_PATHS

__all__ = ["ENV_API_KEY", "PUBLIC_PATHS", "is_authorised", "resolve_api_key", "unauthorised_message"]

#: Environment variable holding the API key; when set, every API request must carry it.
ENV_API_KEY = "SHORTLIST_API_KEY"
#: Paths served without the API key: the web page (it asks for the key), the API's description and its pages' files.
PUBLIC_PATHS = frozenset(
    {"/", "/favicon.ico", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", *ASSET_PATHS}
)


def resolve_api_key(api_key: str | None) -> str | None:
    """The key requests must carry: ``api_key``, else ``SHORTLIST_API_KEY``; ``None`` when it is empty (no key)."""
    if api_key is None:
        api_key = os.environ.get(ENV_API_KEY, "")
    api_key = api_key.strip()
    return api_key or None


def is_authorised(headers: Mapping[str, bytes], api_key: bytes) -> bool:
    """Whether lower-cased request ``headers`` carry ``api_key`` (``Authorization: Bearer`` or ``X-API-Key``)."""
    given = headers.get("x-api-key")
    auth = headers.get("authorization")
    if given is None and auth is not None and auth[:7].lower() == b"bearer ":
        given = auth[7:].strip()
    return given is not None and hmac.compare_digest(given, api_key)


def unauthorised_message() -> str:
    """What a request without the right key is told (401)."""
    return (
        f"Missing or wrong API key: send it as 'Authorization: Bearer <key>' or 'X-API-Key: <key>' "
        f"(the server's {ENV_API_KEY})."
    )
