"""``/docs`` and ``/redoc`` of ``shortlist serve`` work offline: every URL in them is a path on the server itself.

(The headless Chromium test in test_server_browser.py opens them and checks what they load and render.)
"""

from __future__ import annotations

import re
import urllib.request
from typing import TYPE_CHECKING

import pytest

from shortlist.server.docs import ASSET_PATHS, CSP

if TYPE_CHECKING:
    from .conftest import LiveServer

URL = re.compile(r"(?:https?:)?//[^\s\"'<>()]+", re.IGNORECASE)
PAGES = ("/docs", "/redoc", "/docs/oauth2-redirect")


def _get(url: str, header: str = "content-type") -> tuple[int, str, bytes]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(urllib.request.Request(url), timeout=30) as response:
            return int(response.status), response.headers.get(header, ""), bytes(response.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.headers.get(header, ""), bytes(exc.read())


@pytest.mark.parametrize("path", PAGES)
def test_docs_pages_hold_no_url_outside_the_server(live: LiveServer, path: str) -> None:
    status, kind, body = _get(live.url + path)
    assert status == 200 and kind.startswith("text/html")
    html = body.decode("utf-8")
    assert [u for u in URL.findall(html) if not u.startswith(live.url)] == []
    assert "http://" not in html.replace(live.url, "") and "https://" not in html
    # and the browser is told to load nothing from anywhere else (ReDoc's bundle has a logo URL of its own)
    policy = _get(live.url + path, "content-security-policy")[1]
    assert policy == CSP and "default-src 'self'" in policy and "connect-src 'self'" in policy


def test_docs_load_their_assets_from_the_server(live: LiveServer) -> None:
    html = _get(live.url + "/docs")[2].decode() + _get(live.url + "/redoc")[2].decode()
    linked = set(re.findall(r'(?:src|href)="([^"]+)"', html))
    assert linked == set(ASSET_PATHS)  # the Swagger UI script and styles, ReDoc's script, the favicon
    for path in sorted(ASSET_PATHS):
        status, kind, body = _get(live.url + path)
        assert status == 200 and len(body) > 500, path
        assert kind.split(";")[0] in ("text/javascript", "text/css", "image/png"), kind
    assert b"SwaggerUIBundle" in _get(live.url + "/docs/assets/swagger-ui-bundle.js")[2]


def test_docs_and_assets_need_no_api_key(live_with_key: LiveServer) -> None:
    for path in (*PAGES, *sorted(ASSET_PATHS), "/openapi.json"):
        assert _get(live_with_key.url + path)[0] == 200, path
    assert _get(live_with_key.url + "/api/tags")[0] == 401
