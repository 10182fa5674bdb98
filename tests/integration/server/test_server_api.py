"""`shortlist serve` over real HTTP on 127.0.0.1: every route, every limit and bad input (a clear 4xx each), the
API key, concurrent requests sharing encoder batches, and the `serve` command itself."""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np
import pytest

from shortlist import Encoder

from .conftest import API_KEY, COLLECTION, DOCS, LIMITS, env_without_proxies, start_server, stop_server

if TYPE_CHECKING:
    from .conftest import LiveServer


@pytest.fixture
def http(live: LiveServer) -> httpx.Client:
    with httpx.Client(base_url=live.url, timeout=60, trust_env=False) as client:
        yield client


def error_of(resp: httpx.Response) -> str:
    body = resp.json()["error"]
    return body["message"] if isinstance(body, dict) else body


# ---------------------------------------------------------------------------------------------- embeddings
def test_embed_list_and_string(http: httpx.Client, encoder: Encoder) -> None:
    texts = ["First text.", "Ｓｅｃｏｎｄ\u3000text"]  # full-width: cleaned exactly as embed_documents cleans it
    body = http.post("/api/embed", json={"model": "all-minilm", "input": texts}).json()
    np.testing.assert_allclose(np.asarray(body["embeddings"], np.float32), encoder.embed_documents(texts), atol=1e-6)
    assert body["model"] == "all-minilm" and body["prompt_eval_count"] == sum(map(encoder.count_tokens, texts))
    one = http.post("/api/embed", json={"input": "First text."}).json()  # model is optional
    np.testing.assert_allclose(one["embeddings"][0], encoder.embed_documents(["First text."])[0], atol=1e-6)
    assert http.post("/api/embed", json={"input": []}).json()["embeddings"] == []


def test_long_text_is_pooled_unless_truncate_false(http: httpx.Client, encoder: Encoder) -> None:
    long = " ".join(["The quick brown fox jumps over the lazy dog."] * 40)  # ~400 word pieces: two windows
    assert encoder.count_tokens(long) > encoder.max_text_tokens
    pooled = http.post("/api/embed", json={"input": long})
    assert pooled.status_code == 200
    np.testing.assert_allclose(pooled.json()["embeddings"][0], encoder.embed_documents([long])[0], atol=1e-6)
    refused = http.post("/api/embed", json={"input": ["short", long], "truncate": False})
    assert refused.status_code == 400 and "input[1]" in error_of(refused) and "truncate=true" in error_of(refused)


@pytest.mark.parametrize("content_type", [None, "application/x-www-form-urlencoded", "text/plain"])
def test_json_without_a_json_content_type(http: httpx.Client, encoder: Encoder, content_type: str | None) -> None:
    """`curl -d '{...}'` (Ollama's documented usage) sends JSON labelled as a form: it is read as JSON."""
    headers = {"content-type": content_type} if content_type else {}
    resp = http.post("/api/embed", content=b'{"model": "all-minilm", "input": "hello"}', headers=headers)
    assert resp.status_code == 200, resp.text
    np.testing.assert_allclose(resp.json()["embeddings"][0], encoder.embed_documents(["hello"])[0], atol=1e-6)


def test_openai_route_base64_is_little_endian_float32(http: httpx.Client, encoder: Encoder) -> None:
    resp = http.post("/v1/embeddings", json={"model": "all-minilm", "input": "hello", "encoding_format": "base64"})
    raw = base64.b64decode(resp.json()["data"][0]["embedding"])
    assert np.array_equal(np.frombuffer(raw, "<f4"), encoder.embed_documents(["hello"])[0])


@pytest.mark.parametrize(
    ("path", "body", "status", "needle"),
    [
        ("/api/embed", {"input": ""}, 400, "input is empty"),
        ("/api/embed", {"input": ["ok", "\t \n"]}, 400, "input[1] is empty"),
        ("/api/embed", {"input": 42}, 422, "input"),
        ("/api/embed", {"input": ["a", None]}, 422, "input"),
        ("/api/embed", {}, 422, "Field required"),
        ("/api/embed", {"input": "x", "model": "llama3"}, 404, "all-minilm"),
        ("/api/embed", {"input": "x", "dimensions": 128}, 400, "384"),
        ("/api/embed", {"input": ["t"] * (LIMITS.max_inputs + 1)}, 400, f"limit is {LIMITS.max_inputs}"),
        ("/api/embed", {"input": "x" * (LIMITS.max_text_chars + 1)}, 400, "characters"),
        ("/api/embeddings", {"prompt": ""}, 400, "prompt is empty"),
        ("/api/embeddings", {"input": "x"}, 422, "prompt"),
        ("/v1/embeddings", {"input": "x"}, 422, "model"),
        ("/v1/embeddings", {"model": "all-minilm", "input": []}, 400, "empty list"),
        ("/v1/embeddings", {"model": "all-minilm", "input": [1, 2, 3]}, 400, "token ids"),
        ("/v1/embeddings", {"model": "all-minilm", "input": "x", "encoding_format": "hex"}, 422, "encoding_format"),
        ("/api/similarity", {"text1": "a"}, 422, "text2"),
        ("/api/similarity", {"text1": "a", "text2": " "}, 400, "text2 is empty"),
        ("/api/similarity/batch", {"pairs": [{"text1": "a", "text2": ""}]}, 400, "pairs[0].text2"),
        ("/api/similarity/batch", {"pairs": [], "threshold": 2}, 422, "threshold"),
        ("/api/search", {"query": ""}, 400, "query is empty"),
        ("/api/search", {"query": "cats", "k": 0}, 422, "k"),
        ("/api/search", {"query": "cats", "mode": "fuzzy"}, 422, "mode"),
        ("/api/search", {"query": "cats", "where": {"colour": "red"}}, 400, "Known fields"),
        ("/api/search", {"query": "cats", "where": {"$bogus": 1}}, 400, "where"),
        ("/api/search", {"query": "cats", "collection": "nope"}, 404, "shortlist index"),
    ],
)
def test_bad_input_gets_a_clear_4xx(http: httpx.Client, path: str, body: Any, status: int, needle: str) -> None:
    resp = http.post(path, json=body)
    assert resp.status_code == status, resp.text
    assert needle in error_of(resp)
    if path.startswith("/v1/"):
        assert resp.json()["error"]["type"] in ("invalid_request_error", "not_found_error")


def test_malformed_and_oversized_bodies(http: httpx.Client) -> None:
    bad_json = http.post("/api/embed", content=b'{"input": ["a",', headers={"content-type": "application/json"})
    assert bad_json.status_code == 422 and "JSON" in error_of(bad_json)
    not_json = http.post("/api/embed", content=b"\xff\xfe\x00", headers={"content-type": "application/json"})
    assert not_json.status_code == 400 and "parsing the body" in error_of(not_json)
    json_type = {"content-type": "application/json"}
    nan = http.post("/api/search", content=b'{"query": "x", "min_score": NaN}', headers=json_type)
    assert nan.status_code == 422
    big = json.dumps({"input": ["word " * 700] * 80}).encode()
    assert len(big) > LIMITS.max_body_bytes
    too_big = http.post("/api/embed", content=big, headers={"content-type": "application/json"})
    assert too_big.status_code == 413 and f"{LIMITS.max_body_bytes:,} bytes" in error_of(too_big)

    def chunks():  # no Content-Length: the limit holds while streaming
        for _ in range(40):
            yield b"x" * 8192

    streamed = http.post("/api/embed", content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413
    v1 = http.post("/v1/embeddings", content=big, headers={"content-type": "application/json"})
    assert v1.status_code == 413 and v1.json()["error"]["type"] == "invalid_request_error"
    assert http.get("/api/embed").status_code == 405
    assert http.get("/no/such/route").status_code == 404


# ---------------------------------------------------------------------------------------------- similarity
def test_similarity_and_batch(http: httpx.Client, encoder: Encoder) -> None:
    a, b, c = "How do I reset my password?", "I forgot my login credentials.", "Bananas are rich in potassium."
    sim = http.post("/api/similarity", json={"text1": a, "text2": b}).json()["similarity"]
    assert sim == pytest.approx(encoder.similarity(a, b), abs=1e-5)
    batch = http.post("/api/similarity/batch", json={"pairs": [{"text1": a, "text2": b}, {"text1": a, "text2": c}],
                                                     "threshold": 0.4}).json()  # fmt: skip
    assert batch["similarities"] == pytest.approx([encoder.similarity(a, b), encoder.similarity(a, c)], abs=1e-5)
    assert batch["similarities"][0] > batch["similarities"][1]
    assert batch["matches"] == [s >= 0.4 for s in batch["similarities"]]


def test_similarity_csv(http: httpx.Client, encoder: Encoder) -> None:
    rows = [("A cat sat on the mat.", "A kitten rested on the rug."), ("Stocks fell.", 'She said "hi, there".')]
    text = "text1,text2\n" + "".join(f'"{a}","{b.replace(chr(34), chr(34) * 2)}"\n' for a, b in rows)
    resp = http.post("/api/similarity/csv", files={"file": ("pairs.csv", text.encode())}, data={"threshold": "0.5"})
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
    assert 'filename="pairs-scored.csv"' in resp.headers["content-disposition"]
    import csv
    import io

    out = list(csv.reader(io.StringIO(resp.text)))
    assert out[0] == ["text1", "text2", "similarity", "match"]
    for (a, b), row in zip(rows, out[1:], strict=True):
        assert row[:2] == [a, b]
        assert float(row[2]) == pytest.approx(encoder.similarity(a, b), abs=2e-6)
        assert row[3] == ("yes" if float(row[2]) >= 0.5 else "no")
    no_header = http.post("/api/similarity/csv", files={"file": ("p.tsv", b"one\ttwo\n")}).text.splitlines()
    assert no_header[0] == "text1,text2,similarity" and no_header[1].startswith("one,two,")


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"", "no rows"),
        (b"a,b\nc\n", "Line 2"),
        (b"a,b,c\n", "Line 1"),
        (b"caf\xe9,b\n", "not UTF-8"),
        (b"a, \n", "column 2 is empty"),
        (b"x,y\n" * (LIMITS.max_csv_rows + 1), "rows"),
    ],
)
def test_similarity_csv_bad_files(http: httpx.Client, content: bytes, needle: str) -> None:
    resp = http.post("/api/similarity/csv", files={"file": ("bad.csv", content)})
    assert resp.status_code == 400 and needle in error_of(resp), resp.text


def test_similarity_csv_needs_a_file(http: httpx.Client) -> None:
    assert http.post("/api/similarity/csv", data={"threshold": "0.5"}).status_code == 422
    bad = http.post("/api/similarity/csv", files={"file": ("a.csv", b"a,b\n")}, data={"threshold": "7"})
    assert bad.status_code == 422 and "threshold" in error_of(bad)


# ---------------------------------------------------------------------------------------------- search, health
def test_search(http: httpx.Client, encoder: Encoder) -> None:
    body = http.post("/api/search", json={"query": "Do cats sleep a lot?", "k": 2}).json()
    assert body["collection"] == COLLECTION and len(body["hits"]) == 2
    top = body["hits"][0]
    assert top["source"] == "cats" and top["rank"] == 1
    cats = next(d["text"] for d in DOCS if d["id"] == "cats")
    want = float(encoder.embed_query("Do cats sleep a lot?") @ encoder.embed_documents([cats])[0])
    assert top["score"] == pytest.approx(want, abs=1e-4)
    assert body["stats"]["chunks_total"] == len(DOCS) and body["stats"]["kept_tokens"] > 0
    german = http.post("/api/search", json={"query": "Wann kommt mein Paket?", "k": 5, "where": {"lang": "de"}}).json()
    assert {h["metadata"]["lang"] for h in german["hits"]} == {"de"} and german["hits"][0]["source"] == "versand"
    strict = http.post("/api/search", json={"query": "Do cats sleep a lot?", "k": 5, "min_score": 0.5}).json()
    assert [h["source"] for h in strict["hits"]] == ["cats"]
    hybrid = http.post("/api/search", json={"query": "except clause tuple", "mode": "hybrid", "k": 1}).json()
    assert hybrid["hits"][0]["source"] == "python"


def test_health_and_openapi(http: httpx.Client) -> None:
    h = http.get("/health").json()
    assert h["status"] == "ok" and h["model_loaded"] is True and h["dimension"] == 384
    assert h["backend"] == "onnx" and h["collections"] == {COLLECTION: len(DOCS)}
    assert h["limits"]["max_inputs"] == LIMITS.max_inputs
    doc = http.get("/openapi.json").json()
    for route in ("/api/embed", "/api/embeddings", "/v1/embeddings", "/api/similarity", "/api/search", "/health"):
        assert route in doc["paths"]
    assert http.get("/api/version").json()["version"]
    assert http.get("/v1/models").json()["data"][0]["id"] == "all-minilm"
    page = http.get("/")
    assert page.status_code == 200 and "threshold" in page.text


# ---------------------------------------------------------------------------------------------- batching
def test_concurrent_requests_share_batches_and_get_their_own_vectors(live: LiveServer, encoder: Encoder) -> None:
    texts = [f"Sentence number {i} is about topic {i % 7}." for i in range(96)]

    async def run() -> list[list[float]]:
        async with httpx.AsyncClient(base_url=live.url, timeout=60, trust_env=False) as client:
            responses = await asyncio.gather(*(client.post("/api/embed", json={"input": t}) for t in texts))
        assert all(r.status_code == 200 for r in responses)
        return [r.json()["embeddings"][0] for r in responses]

    before = live.app.state.batcher.stats.batches
    got = np.asarray(asyncio.run(run()), dtype=np.float32)
    batches = live.app.state.batcher.stats.batches - before
    # Each request got its own text's vector (batch padding changes only the last bits).
    np.testing.assert_allclose(got, encoder.embed_documents(texts), atol=1e-5)
    assert batches < len(texts), "96 concurrent requests ran as 96 encoder calls: no batching happened"


def test_full_queue_answers_503(encoder: Encoder, server_db: Path) -> None:
    from shortlist.server import create_app
    from shortlist.server.app import Limits

    from .conftest import start_server, stop_server

    app = create_app(encoder=encoder, db=server_db, api_key="", limits=Limits(max_queue=4, max_inputs=32), max_batch=4)
    srv = start_server(app)
    try:

        async def run() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=srv.url, timeout=60, trust_env=False) as client:
                bodies = [{"input": [f"text {i} {j}" for j in range(8)]} for i in range(12)]
                jobs = [client.post("/api/embed", json=body) for body in bodies]
                return await asyncio.gather(*jobs)

        codes = [r.status_code for r in asyncio.run(run())]
    finally:
        stop_server(srv)
    assert set(codes) <= {200, 503} and 503 in codes and 200 in codes


# ---------------------------------------------------------------------------------------------- API key
def test_api_key(live_with_key: LiveServer) -> None:
    with httpx.Client(base_url=live_with_key.url, timeout=60, trust_env=False) as client:
        for path, body in (("/api/embed", {"input": "x"}), ("/v1/embeddings", {"model": "all-minilm", "input": "x"})):
            missing = client.post(path, json=body)
            assert missing.status_code == 401 and "API key" in error_of(missing)
            assert missing.headers["www-authenticate"] == "Bearer"
            wrong = client.post(path, json=body, headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 401
            assert client.post(path, json=body, headers={"Authorization": f"Bearer {API_KEY}"}).status_code == 200
            assert client.post(path, json=body, headers={"X-API-Key": API_KEY}).status_code == 200
        assert client.get("/health").status_code == 401
        assert client.get("/health", headers={"X-API-Key": API_KEY}).status_code == 200
        assert client.get("/").status_code == 200  # the page is public; it asks for the key
        assert client.get("/openapi.json").status_code == 200


def test_api_key_with_real_clients(live_with_key: LiveServer) -> None:
    ollama = pytest.importorskip("ollama")
    openai = pytest.importorskip("openai")
    with pytest.raises(ollama.ResponseError) as info:
        ollama.Client(host=live_with_key.url).embed(model="all-minilm", input="x")
    assert info.value.status_code == 401
    ok = ollama.Client(host=live_with_key.url, headers={"Authorization": f"Bearer {API_KEY}"})
    assert len(ok.embed(model="all-minilm", input="x").embeddings[0]) == 384
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=live_with_key.url + "/v1", api_key="wrong", max_retries=0).embeddings.create(
            model="all-minilm", input="x"
        )
    good = openai.OpenAI(base_url=live_with_key.url + "/v1", api_key=API_KEY, max_retries=0)
    assert len(good.embeddings.create(model="all-minilm", input="x").data[0].embedding) == 384


def test_api_key_from_environment(encoder: Encoder, server_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from starlette.testclient import TestClient

    from shortlist.server import create_app

    monkeypatch.setenv("SHORTLIST_API_KEY", "from-env")
    with TestClient(create_app(encoder=encoder, db=server_db)) as client:
        assert client.post("/api/embed", json={"input": "x"}).status_code == 401
        assert client.post("/api/embed", json={"input": "x"}, headers={"X-API-Key": "from-env"}).status_code == 200
    with TestClient(create_app(encoder=encoder, db=server_db, api_key="")) as client:  # "" turns it off
        assert client.post("/api/embed", json={"input": "x"}).status_code == 200


# ---------------------------------------------------------------------------------------------- the command
def test_serve_command(encoder: Encoder, tmp_path: Path) -> None:
    """`shortlist serve` in a subprocess: binds 127.0.0.1, answers, and stops on SIGINT."""
    import socket

    from shortlist import Prefilter

    # A folder of its own: the session's server_db is held by this process's in-thread servers, and Chroma's
    # embedded mode allows one process per folder (a second `shortlist serve` on it would be refused).
    server_db = tmp_path / "serve-db"
    with Prefilter(COLLECTION, path=server_db, encoder=encoder) as pf:
        pf.add_documents(DOCS)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "shortlist", "serve", "--port", str(port), "--db", str(server_db),
           "--collection", COLLECTION, "--log-level", "warning"]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env_without_proxies(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 90
        health = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2, trust_env=False)
                break
            except httpx.TransportError:
                time.sleep(0.3)
        assert health is not None and health.status_code == 200, proc.stderr.read().decode() if proc.stderr else ""
        assert health.json()["collections"] == {COLLECTION: len(DOCS)}
        search = httpx.post(f"http://127.0.0.1:{port}/api/search", json={"query": "purring cat"}, trust_env=False)
        assert search.json()["hits"][0]["source"] == "cats"
    finally:
        proc.send_signal(2)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_import_cli_does_not_import_fastapi() -> None:
    code = "import sys, shortlist.cli; print('fastapi' in sys.modules, 'uvicorn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_start_up_builds_the_keyword_index_and_calibration(encoder: Encoder, tmp_path: Path) -> None:
    """Hybrid is the default mode: the server pays for BM25 and the calibration before the first search."""
    from shortlist import Prefilter
    from shortlist.server import create_app

    db = tmp_path / "db"
    with Prefilter("warm-docs", path=db, encoder=encoder) as pf:
        pf.add_documents(DOCS)  # the ingest builds the keyword copy and calibrates: take both away again
        folder = pf._keywords.folder
    assert folder is not None and (folder / "calibration.json").is_file()
    shutil.rmtree(folder)
    saved = folder / "calibration.json"
    live = start_server(create_app(encoder=encoder, db=db, collection="warm-docs", api_key="", limits=LIMITS))
    try:
        assert saved.is_file()  # written during start-up, before any request
        with httpx.Client(base_url=live.url, trust_env=False) as http:
            assert http.get("/health").json()["status"] == "ok"
    finally:
        stop_server(live)
