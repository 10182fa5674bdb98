"""The driver of a distributed ingest: read, hand batches to a Ray Data actor pool, tally, report.

The only module of shortlist that imports Ray (lazily: :func:`import_ray`). See :func:`index`.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from shortlist.config import DEFAULT_CHROMA_PORT, DEFAULT_COLLECTION
from shortlist.distributed.report import DistributedReport, tally
from shortlist.distributed.worker import BatchStats, IndexWorker, WorkerSpec, document_rows
from shortlist.errors import ConfigError, InputError, MissingDependencyError
from shortlist.ingest.chunking import check_chunking
from shortlist.ingest.coerce import coerce_documents
from shortlist.store.metadata import KEY_TITLE
from shortlist.text import DEFAULT_CHUNK_OVERLAP, DEFAULT_CHUNK_TOKENS

if TYPE_CHECKING:
    from shortlist.loaders import LoadResult

__all__ = ["DEFAULT_DOCS_PER_BATCH", "DEFAULT_WRITE_BATCH", "EXTRA_HINT", "import_ray", "index"]

logger = logging.getLogger(__name__)

#: Documents per Ray task (one call of an actor): the unit that is retried when an actor dies.
DEFAULT_DOCS_PER_BATCH = 64
#: Most chunks per write to the Chroma server (benchmarks/distributed.py: writes of 1024 chunks reach 1.5x the
#: chunks/s of writes of 256, 2x of 64). A batch writes its new chunks at most this many at a time.
DEFAULT_WRITE_BATCH = 1024
EXTRA_HINT = "pip install 'shortlist[distributed]'"
#: Variables the driver hands to every Ray worker (a cluster's workers do not inherit the driver's environment).
FORWARDED_ENV = (
    "SHORTLIST_HOME",
    "SHORTLIST_CACHE",
    "SHORTLIST_MODEL",
    "SHORTLIST_BACKEND",
    "SHORTLIST_DEVICE",
    "SHORTLIST_ONNX_THREADS",
    "SENTENCE_TRANSFORMERS_HOME",
    "HF_HOME",
    "HF_HUB_OFFLINE",
    "TRANSFORMERS_OFFLINE",
    "ORT_DISABLE_TELEMETRY",
)
#: Ray's own switches: no usage statistics sent home, and Ray Data's progress bars leave ``builtins.print`` alone
#: (by default they replace it for the rest of the process); a local instance on the loopback interface only.
RAY_QUIET_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_TQDM_PATCH_PRINT": "0"}
RAY_LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


def import_ray(*, local: bool = True) -> Any:
    """The ``ray`` module, with usage statistics off (and, for a local instance, bound to 127.0.0.1).

    Ray reads these switches when it is imported and started, so they are set (unless the caller set them) before.
    ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` makes a local instance use the loopback address for every server it
    starts (GCS, raylet, workers) instead of the machine's routable address.

    Raises:
        MissingDependencyError: if Ray (with Ray Data) is not installed; the message names the extra.
    """
    for name, value in {**RAY_QUIET_ENV, **(RAY_LOOPBACK_ENV if local else {})}.items():
        os.environ.setdefault(name, value)
    try:
        import ray
        import ray.data  # noqa: F401 - Ray Data is part of the extra
    except ImportError as exc:
        msg = f"Distributed ingest needs Ray Data: {EXTRA_HINT}."
        raise MissingDependencyError(msg) from exc
    return ray


def _worker_env() -> dict[str, str]:
    env = {name: os.environ[name] for name in FORWARDED_ENV if os.environ.get(name)}
    env.update(RAY_QUIET_ENV)
    return env


@contextlib.contextmanager
def ray_session(ray: Any, address: str | None, *, num_cpus: int | None = None) -> Iterator[bool]:
    """Use the Ray instance this process is attached to, or start one (``address=None``) or join one; yields
    whether this call started or joined it (then it is shut down on exit).
    """  # noqa: D205
    if ray.is_initialized():
        yield False
        return
    kwargs: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": False,
        "logging_level": logging.WARNING,
        "runtime_env": {"env_vars": _worker_env()},
    }
    if address is None or address == "local":
        ray.init(num_cpus=num_cpus, **kwargs)
    else:
        try:
            ray.init(address=address, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            msg = f"Cannot join the Ray cluster at {address!r}: {exc}".strip()
            raise ConfigError(msg) from exc
    try:
        yield True
    finally:
        ray.shutdown()


def _read(source: Any, text_field: str) -> tuple[list[dict[str, bytes]] | None, Any, LoadResult | None]:
    """``(rows, dataset, files)``: the driver's rows for paths (read and checked here), or the user's Dataset."""
    if hasattr(source, "map_batches") and hasattr(source, "iter_batches"):
        return None, source, None
    from shortlist.loaders import SUPPORTED_SUFFIXES, load_files

    paths = [source] if isinstance(source, str | os.PathLike) else list(source)
    if not paths or not all(isinstance(p, str | os.PathLike) for p in paths):
        msg = "index() takes files and folders (paths) or a ray.data.Dataset of documents."
        raise InputError(msg)
    loaded = load_files(paths, text_field=text_field)  # the readers shortlist index uses: the same documents
    if not loaded.documents:
        if loaded.failed:
            raise InputError("; ".join(loaded.failures()))
        msg = f"Nothing to index in {', '.join(map(str, paths))}: no non-empty {', '.join(SUPPORTED_SUFFIXES)} files."
        raise InputError(msg)
    for line in loaded.failures():
        logger.warning("Cannot read %s", line)
    # A list, as shortlist index gives add_documents: every document checked before anything is written, and a
    # document id seen twice keeps its last version.
    docs = list(coerce_documents([d.as_dict() for d in loaded.documents]))
    return document_rows(docs), None, loaded


def _cluster_cpus(ray: Any) -> int:
    try:
        return int(ray.cluster_resources().get("CPU", 1))
    except Exception:  # pragma: no cover - a client that cannot say
        return 1


def index(
    source: str | os.PathLike[str] | Iterable[str | os.PathLike[str]] | Any,
    *,
    collection: str = DEFAULT_COLLECTION,
    host: str | None = None,
    port: int | None = None,
    ray_address: str | None = None,
    actors: int | None = None,
    batch_size: int = DEFAULT_DOCS_PER_BATCH,
    write_batch: int = DEFAULT_WRITE_BATCH,
    model: str | None = None,
    backend: str | None = None,
    device: str | None = None,
    cpus_per_actor: float = 1.0,
    chunk_tokens: int = DEFAULT_CHUNK_TOKENS,
    chunk_overlap: int = DEFAULT_CHUNK_OVERLAP,
    title_key: str | None = KEY_TITLE,
    text_field: str = "text",
    num_cpus: int | None = None,
    progress: Callable[[DistributedReport], None] | None = None,
) -> DistributedReport:
    """Index files, folders or a Ray Dataset into a collection of a Chroma server, on Ray.

    The driver (this process) reads the files as ``shortlist index`` does (:func:`~shortlist.loaders.load_files`:
    text, Markdown, JSON Lines, BEIR folders, PDF/HTML/DOCX with the ``files`` extra) and hands batches of
    ``batch_size`` documents to a Ray Data pool of ``actors`` actors. Each actor loads one
    :class:`~shortlist.encoder.Encoder` once, then per batch: chunks (the chunker of ``shortlist index``: the same
    ids, texts and metadata), asks the server which chunks it holds already, embeds only the new ones and writes
    them through :meth:`ChunkStore.upsert <shortlist.store.ChunkStore.upsert>` in writes of ``write_batch``
    chunks (so every :class:`~shortlist.prefilter.Prefilter` and ``shortlist serve`` on the collection sees
    them). A batch returns once written; an actor that dies is restarted and its batch run again, which writes
    no duplicate (stable ids) and embeds nothing the first attempt stored. Running again embeds nothing.

    Args:
        source: Files and folders (read on the driver: they need not be on the workers), or a
            ``ray.data.Dataset`` whose rows are documents as :meth:`Prefilter.add_documents
            <shortlist.prefilter.Prefilter.add_documents>` takes dicts (``text``, optional ``id`` and ``metadata``).
        collection: The collection (created with the model's contract if missing). Default ``"shortlist"``.
        host: The Chroma server's host (``chroma run``), reachable from every Ray node. Required.
        port: Its port (default 8000).
        ray_address: ``None`` (default): the Ray instance this process is attached to, else a new local one;
            ``"auto"`` or ``"ray://HOST:10001"`` or ``"HOST:6379"``: join that cluster.
        actors: Actors in the pool (default: the cluster's CPUs divided by ``cpus_per_actor``).
        batch_size: Documents per task (default 64): the unit of progress and of retry.
        write_batch: Most chunks per write to the server (default 1024).
        model: The model (default: the packaged all-MiniLM-L6-v2); a folder must exist on every node.
        backend: ``"onnx"`` (default on the CPU), ``"onnx-int8"`` or ``"torch"``.
        device: Torch device (default CPU).
        cpus_per_actor: CPUs each actor reserves, and its inference threads (default 1).
        chunk_tokens: Most word pieces in a chunk (default 128, as ``shortlist index``).
        chunk_overlap: Word pieces carried over (default 16).
        title_key: Metadata key of a document's title (default ``"title"``).
        text_field: The JSON Lines field holding the text (default ``"text"``).
        num_cpus: CPUs of a local instance started here (default: all of the machine's).
        progress: Called after each batch with the running report.

    Returns:
        A :class:`~shortlist.distributed.DistributedReport`.

    Raises:
        MissingDependencyError: without Ray (``pip install 'shortlist[distributed]'``).
        ConfigError: without ``host``, on bad sizes, or if the Ray cluster at ``ray_address`` cannot be joined.
        InputError: on paths with nothing to index, or a bad document (before anything is written).
        StoreError: if the server cannot be reached or refuses a write.
    """
    started = time.perf_counter()
    if not host:
        msg = "Distributed ingest writes to a Chroma server every worker can reach: give host (and port)."
        raise ConfigError(msg)
    for name, value in (("batch_size", batch_size), ("write_batch", write_batch)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            msg = f"{name} must be a positive int, got {value!r}."
            raise ConfigError(msg)
    if actors is not None and (isinstance(actors, bool) or not isinstance(actors, int) or actors < 1):
        msg = f"actors must be a positive int or None, got {actors!r}."
        raise ConfigError(msg)
    if not cpus_per_actor > 0:
        msg = f"cpus_per_actor must be > 0, got {cpus_per_actor!r}."
        raise ConfigError(msg)
    from shortlist.encoder import Encoder
    from shortlist.store import ChunkStore

    encoder = Encoder(model, device=device, backend=backend)  # not loaded: its facts and its tokenizer's window
    check_chunking(chunk_tokens, chunk_overlap, title_key, max_tokens=encoder.max_text_tokens)
    ray = import_ray(local=ray_address in (None, "local"))
    port = port or DEFAULT_CHROMA_PORT
    # The driver opens the collection first: it is created once, with the model's contract, before the actors race.
    store = ChunkStore(collection, host=host, port=port, encoder=encoder)
    read_start = time.perf_counter()
    rows, dataset, files = _read(source, text_field)
    read_s = time.perf_counter() - read_start
    spec = WorkerSpec(
        collection=collection,
        host=host,
        port=port,
        model=model,
        backend=backend,
        device=device,
        chunk_tokens=chunk_tokens,
        chunk_overlap=chunk_overlap,
        title_key=title_key,
        write_batch=write_batch,
        threads=max(1, math.floor(cpus_per_actor)),
    )
    report = DistributedReport(read_s=read_s, files=files.as_dict() if files is not None else None)
    with ray_session(ray, ray_address, num_cpus=num_cpus), _quiet_ray_data(ray):
        pool = actors or max(1, int(_cluster_cpus(ray) // cpus_per_actor))
        if rows is not None:
            # A corpus of fewer than ``actors`` batches is cut finer, so that every actor gets some of it.
            batch_size = max(1, min(batch_size, math.ceil(len(rows) / pool)))
            blocks = max(1, min(math.ceil(len(rows) / batch_size), 10_000))
            dataset = ray.data.from_items(rows, override_num_blocks=blocks)
        out = dataset.map_batches(
            IndexWorker,
            fn_constructor_args=(spec,),
            batch_size=batch_size,
            batch_format="numpy",
            # One batch in flight per actor: a free actor takes the next batch, rather than an actor that came
            # up first queueing batches while the others still load their encoder.
            compute=ray.data.ActorPoolStrategy(size=pool, max_tasks_in_flight_per_actor=1),
            num_cpus=cpus_per_actor,
            # Ray Data starts its actors with max_restarts=-1 and max_task_retries=-1: an actor that dies (a node
            # lost, a process killed) is started again and its batch run again.
        )
        for row in out.iter_rows():
            report = tally(report, [BatchStats.from_row(row)])
            if progress is not None:
                progress(report)
    return replace(report, seconds=time.perf_counter() - started, total_chunks=store.count())


@contextlib.contextmanager
def _quiet_ray_data(ray: Any) -> Iterator[None]:
    """Ray Data's progress bars and per-run log lines (its ``INFO``/``WARNING``) off while shortlist reports.

    Errors still show; the settings are restored on exit.
    """
    ctx = ray.data.DataContext.get_current()
    names = ("enable_progress_bars", "enable_operator_progress_bars", "print_on_execution_start")
    saved = {name: getattr(ctx, name) for name in names if hasattr(ctx, name)}
    data_logger = logging.getLogger("ray.data")
    level = data_logger.level
    for name in saved:
        setattr(ctx, name, False)
    data_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        data_logger.setLevel(level)
        for name, value in saved.items():
            setattr(ctx, name, value)
