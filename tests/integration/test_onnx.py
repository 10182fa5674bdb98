"""The ONNX Runtime backends on the real model: export and cache, fidelity to torch, no torch at run time, batching.

The export runs once per session into the session's SHORTLIST_CACHE (about 10 s for both files); every other test
reuses the cached files.
"""

from __future__ import annotations

import json
import os
import pydoc_data.topics
import shutil
import subprocess
import sys
import textwrap
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from shortlist import Encoder, clean_text
from shortlist.batching import MicroBatcher
from shortlist.cli import main as cli_main
from shortlist.errors import ConfigError, ModelNotFoundError
from shortlist.model import PACKAGED_WEIGHTS_SHA256, packaged_model_path
from shortlist.onnx_export import EXPORT_VERSION, export_onnx, onnx_cache_dir, onnx_model_path
from shortlist.onnx_session import make_session

TEXTS = [
    "The cat sits on the mat.",
    "How do I read a file line by line in Python?",
    "Stock markets fell sharply today after the central bank raised interest rates by half a point.",
    "0-dimensional biomaterials show inductive properties.",
    "Ｐｙｔｈｏｎ\u3000ｆｉｌｅｓ and 日本語のテキスト",
    pydoc_data.topics.topics["with"][:1500],  # a passage of a few hundred word pieces (split into windows)
    "Mitochondria are the powerhouse of the cell; they make ATP by oxidative phosphorylation.",
    "what is the boiling point of water at the top of mount everest",
]


@pytest.fixture
def onnx_files() -> Iterator[dict[str, Path]]:
    """Export both files (once: into the session cache that conftest sets; later calls find them) and their paths."""
    fp32 = export_onnx()
    int8 = export_onnx(quantized=True)
    yield {"fp32": fp32, "int8": int8, "cache": Path(os.environ["SHORTLIST_CACHE"])}


@pytest.fixture(scope="module")
def reference(torch_encoder: Encoder) -> np.ndarray:
    """sentence-transformers' vectors (the ``torch`` backend), which every ONNX backend is held to."""
    assert torch_encoder.backend_name == "torch"
    return torch_encoder.embed_documents(TEXTS)


def _encoder(backend: str, **kwargs: object) -> Encoder:
    return Encoder(backend=backend, query_cache_size=0, **kwargs).load()  # type: ignore[arg-type]


def test_files_are_cached_under_the_weights_hash(onnx_files: dict[str, Path]) -> None:
    folder = onnx_files["cache"] / "onnx" / PACKAGED_WEIGHTS_SHA256[:16] / f"v{EXPORT_VERSION}"
    assert onnx_files["fp32"] == folder / "model.onnx" == onnx_model_path()
    assert onnx_files["int8"] == folder / "model-int8.onnx" == onnx_model_path(quantized=True)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["export_version"] == EXPORT_VERSION
    # int8 weights: the quantised file is much smaller than the float32 one.
    assert onnx_files["int8"].stat().st_size < 0.75 * onnx_files["fp32"].stat().st_size
    # A second call finds the files and does not export again.
    mtimes = [p.stat().st_mtime_ns for p in (onnx_files["fp32"], onnx_files["int8"])]
    assert export_onnx() == onnx_files["fp32"]
    assert export_onnx(quantized=True) == onnx_files["int8"]
    assert [p.stat().st_mtime_ns for p in (onnx_files["fp32"], onnx_files["int8"])] == mtimes
    assert not list(folder.glob("*.tmp"))


def test_other_weights_get_another_cache_folder(tmp_path: Path) -> None:
    src = packaged_model_path()
    copy = tmp_path / "model"
    shutil.copytree(src, copy)
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # one byte changed: another hash, another folder (no export needed to see it)
    weights.write_bytes(bytes(data))
    assert onnx_cache_dir(copy) != onnx_cache_dir(src)
    assert onnx_cache_dir(copy).parent.name != PACKAGED_WEIGHTS_SHA256[:16]


@pytest.mark.usefixtures("onnx_files")
@pytest.mark.parametrize(("backend", "min_bound", "mean_bound"), [("onnx", 0.9999, 0.99999), ("onnx-int8", 0.98, 0.99)])
def test_backend_agrees_with_torch(reference: np.ndarray, backend: str, min_bound: float, mean_bound: float) -> None:
    enc = _encoder(backend)
    vectors = enc.embed_documents(TEXTS)
    assert vectors.shape == reference.shape and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    cosines = np.sum(vectors * reference, axis=1)
    assert cosines.min() >= min_bound, cosines
    assert cosines.mean() >= mean_bound, cosines
    # Single queries (batch of one, no padding) agree too, and the nearest text is the same as with torch.
    for i, text in enumerate(TEXTS[:4]):
        q = enc.embed_query(text)
        assert float(q @ reference[i]) >= min_bound
        assert int(np.argmax(reference @ q)) == i


@pytest.mark.usefixtures("onnx_files")
def test_truncation_is_at_256_not_the_tokenizer_files_128(torch_encoder: Encoder) -> None:
    # tokenizer.json in the package pads and truncates at 128: the backend must read up to 256 word pieces.
    ref_enc = torch_encoder
    words = " ".join(f"word{i}" for i in range(400))
    head = ref_enc.tokenizer.decode(ref_enc.tokenizer.encode(words, add_special_tokens=False).ids[:200])
    assert 128 < ref_enc.count_tokens(head) <= 254
    enc = _encoder("onnx")
    ref = ref_enc.embed_documents([head])[0]
    got = enc.embed_documents([head])[0]
    assert float(got @ ref) >= 0.9999
    cut = ref_enc.tokenizer.decode(ref_enc.tokenizer.encode(head, add_special_tokens=False).ids[:126])
    assert float(got @ ref_enc.embed_documents([cut])[0]) < 0.999  # the tokens past 128 count


@pytest.mark.usefixtures("onnx_files")
def test_query_process_never_imports_torch(onnx_files: dict[str, Path]) -> None:
    code = textwrap.dedent(
        """
        import json, sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {"torch", "sentence_transformers", "transformers"}:
                    raise ImportError(f"{name} imported by the ONNX path")
        sys.meta_path.insert(0, Block())
        from shortlist import Encoder
        out = {}
        for backend in ("onnx", "onnx-int8"):
            enc = Encoder(backend=backend)
            v = enc.embed_query("Where is the cat?")
            d = enc.embed_documents(["The cat sits on the mat.", "Stocks fell."])
            out[backend] = [float(v @ d[0]), float(v @ d[1])]
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in {"torch", "sentence_transformers", "transformers"})
        print(json.dumps({"scores": out, "heavy": heavy}))
        """
    )
    env = {**os.environ, "SHORTLIST_CACHE": str(onnx_files["cache"])}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["heavy"] == []
    for first, second in result["scores"].values():
        assert first > 0.4 > second


def test_threads_share_forward_passes_and_get_the_unbatched_vectors(onnx_files: dict[str, Path]) -> None:
    enc = _encoder("onnx")
    questions = [f"{t} (question {i})" for i in range(6) for t in TEXTS[:5]]
    expected = np.stack([enc.embed_documents([q])[0] for q in questions])
    batcher = enc._query_batcher
    assert batcher is not None
    before = batcher.stats()
    with ThreadPoolExecutor(max_workers=8) as pool:
        got = np.stack(list(pool.map(enc.embed_query, questions)))
    np.testing.assert_allclose(got, expected, atol=1e-5)
    stats = batcher.stats()
    assert stats.items - before.items == len(questions)
    assert stats.batches - before.batches < len(questions)  # some queries shared a pass


@pytest.mark.usefixtures("onnx_files")
def test_int8_queries_are_not_batched_by_default() -> None:
    # Dynamic int8 quantises activations per batch: a batched query's vector would depend on its neighbours.
    enc = _encoder("onnx-int8")
    assert enc._query_batcher is None
    expected = enc.embed_documents([TEXTS[0]])[0]
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(enc.embed_query, [TEXTS[0]] * 8))
    for vector in got:
        np.testing.assert_array_equal(vector, expected)
    assert _encoder("onnx-int8", batch_queries=True)._query_batcher is not None


def test_micro_batcher_combines_waiting_callers_and_passes_errors() -> None:
    started = threading.Event()
    release = threading.Event()
    calls: list[list[int]] = []

    def fn(items: list[int]) -> list[int]:
        calls.append(list(items))
        if len(calls) == 1:
            started.set()
            release.wait(5)
        if -1 in items:
            raise ValueError("bad item")
        return [x * 10 for x in items]

    batcher = MicroBatcher(fn, max_batch=3)
    with ThreadPoolExecutor(max_workers=6) as pool:
        first = pool.submit(batcher.submit, 0)
        assert started.wait(5)
        rest = []
        for x in (1, 2, 3, 4):
            rest.append(pool.submit(batcher.submit, x))
            while len(batcher._pending) < len(rest):  # queued behind the running pass, in order
                threading.Event().wait(0.001)
        release.set()
        assert first.result(5) == 0
        assert [f.result(5) for f in rest] == [10, 20, 30, 40]
    assert calls == [[0], [1, 2, 3], [4]]
    assert batcher.stats().items == 5 and batcher.stats().batches == 3 and batcher.stats().largest == 3
    with pytest.raises(ValueError, match="bad item"):
        batcher.submit(-1)
    assert batcher.submit(5) == 50  # an error does not wedge the batcher
    with pytest.raises(ConfigError, match="max_batch"):
        MicroBatcher(fn, max_batch=0)


def test_export_command_reports_the_cached_files(
    onnx_files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(["export", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["fp32"]["path"] == str(onnx_files["fp32"]) and out["fp32"]["exported"] is False
    assert out["int8"]["path"] == str(onnx_files["int8"]) and out["int8"]["exported"] is False
    assert cli_main(["export", "--model", "/no/such/folder"]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_models_the_onnx_path_cannot_reproduce_are_refused(tmp_path: Path) -> None:
    src = packaged_model_path()
    model = tmp_path / "cls-pooled"
    shutil.copytree(src, model, ignore=shutil.ignore_patterns("model.safetensors"))
    (model / "model.safetensors").symlink_to(src / "model.safetensors")
    pooling = json.loads((model / "1_Pooling" / "config.json").read_text())
    pooling.update(pooling_mode_mean_tokens=False, pooling_mode_cls_token=True)
    (model / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    with pytest.raises(ConfigError, match="mean pooling"):
        export_onnx(model)
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        export_onnx(tmp_path / "missing")
    with pytest.raises(ConfigError, match="CPU only"):
        Encoder(backend="onnx", device="cuda")


def test_int8_first_in_an_empty_cache_exports_both(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The int8 file needs the float32 one: asking for int8 first must export both (no lock held twice).
    monkeypatch.setenv("SHORTLIST_CACHE", str(tmp_path))
    path = export_onnx(quantized=True)
    assert path.is_file() and onnx_model_path().is_file()
    assert path.parent.parent.parent == tmp_path / "onnx"


def test_the_default_falls_back_to_torch_when_onnx_cannot_be_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, torch_encoder: Encoder
) -> None:
    """A cache that cannot be written must not break a user who never asked for ONNX; one who asked gets the error."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("SHORTLIST_CACHE", str(blocker / "cache"))  # mkdir under a file fails, even as root
    with caplog.at_level("WARNING", logger="shortlist.encoder"):
        enc = Encoder(query_cache_size=0)
        vectors = enc.embed_documents(["The cache is not writable.", "Still works."])
    assert enc.backend_name == "torch"
    assert any("using 'torch' instead" in r.getMessage() for r in caplog.records)
    np.testing.assert_allclose(
        vectors, torch_encoder.embed_documents(["The cache is not writable.", "Still works."]), atol=1e-6
    )
    with pytest.raises(OSError):
        Encoder(backend="onnx").embed_query("asked for onnx")


@pytest.mark.usefixtures("onnx_files")
@pytest.mark.parametrize("kind", ["fp32", "int8"])
def test_sessions_keep_the_slow_fusions_out(onnx_files: dict[str, Path], kind: str, tmp_path: Path) -> None:
    """The graph ORT runs has Add + LayerNormalization, not SkipLayerNormalization, and no BiasGelu.

    ORT ignores an unknown name in ``disabled_optimizers``: this fails if a new ORT renames a fusion and the
    faster graph silently goes away.
    """
    import onnx

    saved = tmp_path / "optimised.onnx"
    make_session(onnx_files[kind], 1, save_optimized=saved)
    ops = Counter(node.op_type for node in onnx.load(str(saved)).graph.node)
    assert ops["LayerNormalization"] == 12  # two per layer, six layers
    assert ops["SkipLayerNormalization"] == 0
    assert ops["BiasGelu"] == 0
    assert ops["Attention" if kind == "fp32" else "QAttention"] == 6  # the fusion that pays is still there


@pytest.mark.usefixtures("onnx_files")
def test_reusing_the_callers_tokens_gives_the_same_vectors() -> None:
    """The encoder hands its token count's word pieces to the backend; they must give what tokenising gives."""
    enc = _encoder("onnx")
    backend = enc._get_backend()
    texts = [clean_text(t) for t in TEXTS if enc.count_tokens(t) <= enc.max_text_tokens]  # as embed_documents
    words = " ".join(f"w{i}" for i in range(300))
    exactly = enc.tokenizer.decode(enc.tokenizer.encode(words, add_special_tokens=False).ids[: enc.max_text_tokens])
    assert enc.count_tokens(exactly) == enc.max_text_tokens  # the longest text that is embedded whole
    texts += ["[CLS] special tokens written in the text [SEP] [PAD]", exactly]
    plain = enc.tokenizer.encode_batch(texts, add_special_tokens=False)
    tokenized = [None if i % 3 == 1 else e for i, e in enumerate(plain)]  # some given, some not
    fresh = backend.encode(texts, 4)
    np.testing.assert_array_equal(backend.encode(texts, 4, tokenized=tokenized), fresh)
    np.testing.assert_array_equal(enc.embed_documents(texts, batch_size=4), fresh)
    with pytest.raises(ValueError, match="entries"):
        backend.encode(texts, 4, tokenized=tokenized[:-1])


@pytest.mark.usefixtures("onnx_files")
def test_padding_set_on_the_shared_tokenizer_does_not_leak_into_vectors() -> None:
    """Someone enables padding on the encoder's tokenizer: its encodings are then not reused, vectors stay right."""
    enc = _encoder("onnx")
    texts = ["a short question", "a somewhat longer question about the boiling point of water"]
    before = enc.embed_documents(texts)
    enc.tokenizer.enable_padding(length=64)
    try:
        after = enc.embed_documents(texts)
    finally:
        enc.tokenizer.no_padding()
    np.testing.assert_allclose(after, before, atol=1e-6)
