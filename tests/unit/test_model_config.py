"""Where the weights come from, and argument > environment > default resolution."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from shortlist.config import DEFAULT_MODEL, resolve_backend, resolve_chroma_path, resolve_device
from shortlist.errors import ConfigError, ModelNotFoundError
from shortlist.model import PACKAGED_WEIGHTS_SHA256, packaged_model_path, resolve_model, weights_sha256


def test_default_is_the_packaged_weights() -> None:
    source = resolve_model()
    assert source.origin == "package"
    assert source.name == DEFAULT_MODEL
    assert source.path == packaged_model_path()
    assert (source.path / "model.safetensors").is_file()


def test_packaged_weights_are_the_known_file() -> None:
    assert weights_sha256(packaged_model_path() / "model.safetensors") == PACKAGED_WEIGHTS_SHA256


@pytest.mark.parametrize("name", [DEFAULT_MODEL, "all-MiniLM-L6-v2", "SENTENCE-TRANSFORMERS/ALL-MINILM-L6-V2"])
def test_default_names_mean_the_packaged_weights_not_the_hub(name: str) -> None:
    source = resolve_model(name)
    assert source.is_local
    assert source.path == packaged_model_path()


def test_environment_variable_is_used_when_no_argument(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    folder = tmp_path / "my-model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    monkeypatch.setenv("SHORTLIST_MODEL", str(folder))
    source = resolve_model()
    assert (source.origin, source.path, source.name) == ("environment", folder.resolve(), "my-model")
    # An explicit argument wins over the environment.
    assert resolve_model(DEFAULT_MODEL).origin == "argument"


def test_a_copy_of_the_packaged_weights_keeps_the_default_name(tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(packaged_model_path(), copy)
    source = resolve_model(copy)
    assert source.name == DEFAULT_MODEL  # same weights: collections built with either are compatible
    assert source.path == copy.resolve()


def test_a_hub_id_is_passed_through_without_fetching() -> None:
    source = resolve_model("BAAI/bge-small-en-v1.5")
    assert (source.name, source.path, source.is_local) == ("BAAI/bge-small-en-v1.5", None, False)


@pytest.mark.parametrize("value", ["./missing-model", "/no/such/folder", "a/b/c", "~/nothing-here-xyz"])
def test_a_missing_folder_is_a_clear_error(value: str) -> None:
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        resolve_model(value)


def test_device_backend_and_paths_resolution(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert resolve_device(None) == "cpu"
    monkeypatch.setenv("SHORTLIST_DEVICE", "cuda:1")
    assert resolve_device(None) == "cuda:1"
    assert resolve_device("cpu") == "cpu"
    assert resolve_backend(None) == "onnx"  # the default on the CPU
    assert resolve_backend(None, device="cuda") == "torch"  # ONNX Runtime here runs on the CPU only
    assert resolve_backend(None, local=False) == "torch"  # a hub id: nothing local to export

    def model(name: str, model_type: str, pooling: str, modules: tuple[str, ...]) -> Path:
        folder = tmp_path / name
        (folder / "1_Pooling").mkdir(parents=True)
        (folder / "config.json").write_text(json.dumps({"model_type": model_type}))
        (folder / "1_Pooling" / "config.json").write_text(json.dumps({pooling: True}))
        mods = [{"type": f"sentence_transformers.models.{m}"} for m in modules]
        (folder / "modules.json").write_text(json.dumps(mods))
        return folder

    minilm_like = model("bert-mean", "bert", "pooling_mode_mean_tokens", ("Transformer", "Pooling", "Normalize"))
    assert resolve_backend(None, model_dir=minilm_like) == "onnx"
    cls_model = model("bert-cls", "bert", "pooling_mode_cls_token", ("Transformer", "Pooling"))
    assert resolve_backend(None, model_dir=cls_model) == "torch"  # the ONNX graph does mean pooling only
    mpnet = model("mpnet", "mpnet", "pooling_mode_mean_tokens", ("Transformer", "Pooling", "Normalize"))
    assert resolve_backend(None, model_dir=mpnet) == "torch"  # the exporter handles BERT only
    dense = model("bert-dense", "bert", "pooling_mode_mean_tokens", ("Transformer", "Pooling", "Dense"))
    assert resolve_backend(None, model_dir=dense) == "torch"  # a Dense layer the graph would leave out
    assert resolve_backend("onnx", model_dir=cls_model) == "onnx"  # asked for: the export says why it can't
    monkeypatch.setenv("SHORTLIST_BACKEND", "torch")
    assert resolve_backend(None) == "torch"
    with pytest.raises(ConfigError, match="Unknown backend 'tensorflow'"):
        resolve_backend("tensorflow")
    monkeypatch.setenv("SHORTLIST_CHROMA_PATH", str(tmp_path / "db"))
    assert resolve_chroma_path(None) == tmp_path / "db"
    assert resolve_chroma_path(tmp_path / "other") == tmp_path / "other"
