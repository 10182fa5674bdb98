"""``POST /api/search`` with ``min_relevance`` (issue 16): hits carry ``relevance``; an off-topic question gets none."""

from __future__ import annotations

import httpx

from tests.integration.server.conftest import LiveServer


def test_search_min_relevance(live: LiveServer) -> None:
    with httpx.Client(base_url=live.url, timeout=60, trust_env=False) as http:
        body = http.post("/api/search", json={"query": "Do cats sleep a lot?", "k": 2}).json()
        assert all(0.0 <= h["relevance"] <= 1.0 for h in body["hits"])
        kept = http.post("/api/search", json={"query": "Do cats sleep a lot?", "min_relevance": 0.3}).json()
        assert [h["source"] for h in kept["hits"]][:1] == ["cats"]
        off = http.post("/api/search", json={"query": "怎么买咖啡？", "min_relevance": 0.3}).json()
        assert off["hits"] == []
        bad = http.post("/api/search", json={"query": "cats", "min_relevance": 1.5})
        assert bad.status_code == 422 and "min_relevance" in bad.text
