r"""A keyword index built for live writes: tantivy segments with deletes, one writer and many readers on one folder.

:class:`LiveKeywordIndex` holds chunk ids and their BM25 terms. The terms come from
:func:`shortlist.keywords.bm25.tokenize`, the very function the bm25s index (:class:`~shortlist.keywords.bm25.
KeywordIndex`) uses, and are handed to tantivy already cut, joined by spaces into a field whose analyzer only splits
at white space (no lower-casing, no length limit, no stemming), so English stemming and stop words and jieba's
Chinese words are identical in both, and so are term frequencies and lengths (``tantivy.PreTokenizedString`` gives
the same postings and scores but builds a Python ``Token`` per term: 5-6 times slower to index). Queries are
built with tantivy's query objects (term and boolean queries), never its query parser, so a user's ``AND``, quotes,
brackets or ``field:value`` are words, not syntax.

Writes: :meth:`~LiveKeywordIndex.add` (an upsert: re-adding an id replaces its document) and
:meth:`~LiveKeywordIndex.delete` are buffered by tantivy's writer and become visible together at
:meth:`~LiveKeywordIndex.commit`, which returns tantivy's opstamp (ordered: a later commit has a larger one) and can
record the caller's journal position beside the index. A commit adds a segment; tantivy merges segments in the
background, and a merge drops the deleted documents. Only one process writes a folder (a lock file,
``writer.lock``; a second writer gets a :class:`~shortlist.errors.StoreError`); any number of processes read it and
see a writer's commits after :meth:`~LiveKeywordIndex.reload`. Opening an existing folder reads tantivy's files
(memory-mapped): nothing is tokenised again. Each document keeps a 64-bit :func:`text_hash` of its text, so a
reconciliation with the store finds texts that changed under the same id (:meth:`~LiveKeywordIndex.text_hashes`).

Scoring. BM25 is ``sum over query terms of idf(t) * tf / (tf + k1 * (1 - b + b * dl / avgdl))`` with Lucene's
``idf(t) = ln(1 + (N - n + 0.5) / (n + 0.5))`` in both engines. tantivy fixes ``k1 = 1.2`` and ``b = 0.75`` (its
Python binding cannot change them) and takes ``dl`` from one-byte field norms (exact up to 40 terms, then within
about 10 %); the bm25s index uses ``k1 = 0.9``, ``b = 0.4`` and exact lengths. So by default (``rescore_depth > 0``)
tantivy only finds candidates, its top ``max(rescore_depth, 2.5 k)``, and each is rescored here with bm25s's formula,
parameters (:data:`~shortlist.keywords.bm25.BM25_K1`, :data:`~shortlist.keywords.bm25.BM25_B`), exact length and
the live statistics, from the terms stored with it: the scores are today's ``KeywordIndex`` scores, and so is the
ranking whenever today's top ``k`` lie within those candidates, up to the order of equal scores. Measured at
``k = 40`` (hybrid search's pool) on SciFact (300 queries) and XQuAD zh (1,190): with 100 candidates every top-40
was today's but for ties at rank 40 (with 80: 5 SciFact queries differed, with 60: 41 queries); top-10s were
today's even with 40 candidates (``benchmarks/keyword_engines.py``).
With ``rescore_depth=0`` the scores are tantivy's own (divided by its ``k1 + 1``, to be on bm25s's scale).

Deleted documents and BM25's statistics: until a merge drops them, tantivy still counts deleted documents in ``N``,
in each term's document frequency ``n`` and in the average length. This index uses the live ones: ``N`` is the
live count, a query term's live ``n`` is counted (a count query over live documents) when the view holds deleted
documents, and the mean length is the mean of the live documents' stored lengths (an aggregation), so rescored
scores use exactly the live statistics. In tantivy's own scores (``rescore_depth=0``, or the candidates' order)
IDF is corrected the same way (a boost per term from tantivy's IDF to the live one), but the mean length in the
length normalisation is tantivy's, over live and not yet merged deleted documents: it drifts by at most the deleted
share times the difference between the deleted and the live documents' mean length (:attr:`SegmentStats.deleted`
says how many), and is exact again after a merge.

Example:
    ```python
    import tempfile

    from shortlist.keywords.segments import LiveKeywordIndex

    with LiveKeywordIndex.open(tempfile.mkdtemp(), writer=True) as index:
        index.add(["a", "b"], ["cats purr softly", "dogs bark loudly"])
        index.commit()
        print([i for i, _ in index.search("barking dog", 5)])
        # ['b']
    ```
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from filelock import FileLock, Timeout

from shortlist._io import atomic_write, file_lock
from shortlist.errors import ConfigError, InputError, MissingDependencyError, StoreError
from shortlist.keywords.bm25 import BM25_B, BM25_K1, INDEX_VERSION, tokenize

__all__ = [
    "DEFAULT_RESCORE_DEPTH",
    "DEFAULT_RESCORE_FACTOR",
    "LIVE_B",
    "LIVE_K1",
    "SEGMENTS_FORMAT",
    "LiveKeywordIndex",
    "SegmentStats",
    "text_hash",
]

logger = logging.getLogger(__name__)

#: tantivy's BM25 parameters (constants in tantivy's ``query/bm25.rs``; the Python binding cannot change them).
LIVE_K1 = 1.2
LIVE_B = 0.75
#: The folder's format: this module's schema plus the tokeniser's version. Another format is not opened.
SEGMENTS_FORMAT = f"segments-5/{INDEX_VERSION}"
#: tantivy candidates rescored with bm25s's parameters per search (at least 2.5 k); ``0``: tantivy's own scores.
DEFAULT_RESCORE_DEPTH = 100
#: ... and at least this many candidates per result asked for.
DEFAULT_RESCORE_FACTOR = 2.5

_META_FILE = "shortlist-segments.json"
_POSITION_FILE = "shortlist-position.json"
_LOCK_FILE = "writer.lock"
_ID = "id"
_BODY = "body"
_LEN = "len"
_HASH = "hash"  # text_hash of the text, to compare with the store's
_TOKENS = "tokens"  # the chunk's model tokens (the store's count), summed for the collection's token total
_TERMS = "terms"  # the terms, stored (not indexed) for rescoring
_ALL = "all"  # one constant term per document: its document frequency is tantivy's N (live + not yet merged)
_ALL_TERM = "1"
_TERMS_ANALYZER = "shortlist_terms"  # white space only: the terms are bm25.tokenize's
#: Memory of tantivy's writer (it flushes a segment when it is full); tantivy needs at least 15 MB per thread.
DEFAULT_HEAP_BYTES = 64_000_000


@dataclass(frozen=True)
class SegmentStats:
    """What a reader's view of the index holds.

    Attributes:
        live: Live documents (``len(index)``).
        deleted: Deleted documents that no merge has dropped yet (still in tantivy's ``N`` and average length).
        segments: Number of segments.
        avgdl: Mean number of terms of a live document.
        opstamp: tantivy's opstamp of the commit this view shows when this process made it, else the one recorded
            with :attr:`position` (``-1``: none).
        position: The journal position recorded with the last commit (``None`` when none was).
    """

    live: int
    deleted: int
    segments: int
    avgdl: float
    opstamp: int
    position: str | None


def _tantivy() -> Any:
    try:
        import tantivy
    except ImportError as exc:  # pragma: no cover - a core dependency
        msg = "The live keyword index needs tantivy: `pip install 'tantivy>=0.22,<0.28'`."
        raise MissingDependencyError(msg) from exc
    return tantivy


def _schema() -> Any:
    tantivy = _tantivy()
    builder = tantivy.SchemaBuilder()
    builder.add_text_field(_ID, stored=True, tokenizer_name="raw", index_option="basic")
    builder.add_text_field(_BODY, stored=False, tokenizer_name=_TERMS_ANALYZER, index_option="freq")
    builder.add_text_field(_ALL, stored=False, tokenizer_name="raw", index_option="basic")
    builder.add_unsigned_field(_LEN, fast=True)
    builder.add_unsigned_field(_HASH, fast=True)
    builder.add_unsigned_field(_TOKENS, fast=True)
    builder.add_bytes_field(_TERMS, stored=True)
    return builder.build()


def _check_rescore(depth: int, factor: float) -> None:
    if depth < 0 or not factor >= 0:
        msg = f"rescore_depth and rescore_factor must be 0 (tantivy's scores) or more, not {depth} and {factor}."
        raise ConfigError(msg)


def text_hash(text: str) -> int:
    """A 64-bit hash of a chunk's text (BLAKE2b), kept per document to find texts that changed in the store."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


def _idf(df: int, n: int) -> float:
    return math.log(1.0 + (n - df + 0.5) / (df + 0.5))


class LiveKeywordIndex:
    """A BM25 keyword index over ``(id, text)`` pairs that takes writes while it is searched (see the module).

    Open it with :meth:`open`; one process opens a folder with ``writer=True``, any number without.

    Args:
        folder: The index's folder.
        index: The open ``tantivy.Index``.
        writer: tantivy's writer, for the writing process.
        lock: The held writer lock, for the writing process.
        rescore_depth: tantivy candidates rescored with bm25s's BM25 per search (``0``: tantivy's own scores).
        rescore_factor: ... and at least this many candidates per result asked for.
    """

    def __init__(
        self,
        folder: Path,
        index: Any,
        writer: Any = None,
        lock: FileLock | None = None,
        *,
        rescore_depth: int = DEFAULT_RESCORE_DEPTH,
        rescore_factor: float = DEFAULT_RESCORE_FACTOR,
    ) -> None:
        _check_rescore(rescore_depth, rescore_factor)
        self.folder = folder
        self.rescore_depth = rescore_depth
        self.rescore_factor = rescore_factor
        #: BM25's ``k1`` and ``b`` of this index's scores (bm25s's when rescoring, else tantivy's).
        self.k1, self.b = (BM25_K1, BM25_B) if rescore_depth else (LIVE_K1, LIVE_B)
        self._tantivy = _tantivy()
        self._index = index
        self._schema = index.schema
        self._writer = writer
        self._lock = lock
        self._view: _View
        self.reload()

    # -- opening and closing ---------------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        folder: str | os.PathLike[str],
        *,
        writer: bool = False,
        heap_bytes: int = DEFAULT_HEAP_BYTES,
        rescore_depth: int = DEFAULT_RESCORE_DEPTH,
        rescore_factor: float = DEFAULT_RESCORE_FACTOR,
    ) -> LiveKeywordIndex:
        """Open the index in ``folder``; the writer creates it when the folder holds none.

        Args:
            folder: The index's folder (created for a writer).
            writer: Take the folder's writer lock and be able to write. Only one process at a time can.
            heap_bytes: Memory of tantivy's writer (at least 15 MB).
            rescore_depth: tantivy candidates rescored per search with bm25s's BM25 (see the module); ``0`` keeps
                tantivy's own scores (``k1 = 1.2``, ``b = 0.75``).
            rescore_factor: ... and at least ``rescore_factor * k`` candidates for ``k`` results.

        Returns:
            The index, showing its last commit.

        Raises:
            StoreError: another process holds the writer lock; a reader found no index; the folder holds an index
                of another format (another tokeniser version: delete the folder and rebuild from the store).
            ConfigError: ``rescore_depth`` or ``rescore_factor`` is negative.
        """
        _check_rescore(rescore_depth, rescore_factor)
        tantivy = _tantivy()
        path = Path(folder)
        lock: FileLock | None = None
        if writer:
            path.mkdir(parents=True, exist_ok=True)
            lock = file_lock(path / _LOCK_FILE, timeout=0)
            try:
                lock.acquire()
            except Timeout as exc:
                msg = (
                    f"The keyword index {path} is already open for writing by another process (one writer per "
                    "folder); open it with writer=False to read it, or close the other writer first."
                )
                raise StoreError(msg) from exc
        try:
            index = cls._open_index(tantivy, path, create=writer)
            tantivy_writer = index.writer(heap_size=max(heap_bytes, 15_000_000), num_threads=1) if writer else None
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        return cls(path, index, tantivy_writer, lock, rescore_depth=rescore_depth, rescore_factor=rescore_factor)

    @staticmethod
    def _open_index(tantivy: Any, path: Path, *, create: bool) -> Any:
        meta_path = path / _META_FILE
        if path.is_dir() and tantivy.Index.exists(str(path)):
            try:
                found = json.loads(meta_path.read_text(encoding="utf-8")).get("format")
            except (OSError, ValueError, AttributeError):
                found = None
            if found != SEGMENTS_FORMAT:
                msg = (
                    f"The keyword index in {path} has format {found!r}, this shortlist writes {SEGMENTS_FORMAT!r}: "
                    "delete the folder and let it be rebuilt from the store."
                )
                raise StoreError(msg)
            try:
                index = tantivy.Index.open(str(path))
            except ValueError as exc:
                msg = f"The keyword index in {path} cannot be opened ({exc}): delete the folder to rebuild it."
                raise StoreError(msg) from exc
        elif create:
            index = tantivy.Index(_schema(), path=str(path), reuse=False)
            atomic_write(meta_path, json.dumps({"format": SEGMENTS_FORMAT}))
        else:
            msg = f"No keyword index in {path}: open it once with writer=True to create it."
            raise StoreError(msg)
        index.register_tokenizer(_TERMS_ANALYZER, tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.whitespace()).build())
        index.config_reader("manual")  # a reader's view changes only at reload(), never under a running query
        return index

    @staticmethod
    def is_compatible(folder: str | os.PathLike[str]) -> bool:
        """Whether ``folder`` holds an index this version can open (same format and tokeniser)."""
        path = Path(folder)
        try:
            found = json.loads((path / _META_FILE).read_text(encoding="utf-8")).get("format")
        except (OSError, ValueError, AttributeError):
            return False
        return bool(found == SEGMENTS_FORMAT and _tantivy().Index.exists(str(path)))

    @property
    def is_writer(self) -> bool:
        """Whether this process holds the folder's writer."""
        return self._writer is not None

    def close(self) -> None:
        """Let go of the writer (uncommitted writes are dropped) and its lock; a reader just drops its searcher."""
        writer, self._writer = self._writer, None
        if writer is not None:
            try:
                writer.rollback()
                writer.wait_merging_threads()  # finishes running merges and frees tantivy's own lock
            except ValueError as exc:  # pragma: no cover - tantivy refused; the lock file still goes
                logger.warning("Closing the keyword index writer of %s: %s", self.folder, exc)
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> LiveKeywordIndex:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- writing ---------------------------------------------------------------------------------------------

    def _require_writer(self) -> Any:
        if self._writer is None:
            msg = f"This keyword index {self.folder} was opened for reading: open it with writer=True to write."
            raise StoreError(msg)
        return self._writer

    def add(self, ids: Sequence[str], texts: Sequence[str], tokens: Sequence[int] | None = None) -> None:
        """Add documents, replacing any with the same id (an upsert); visible after :meth:`commit`.

        Args:
            ids: Chunk ids (non-empty strings). A repeated id keeps its last text.
            texts: Their texts, tokenised with :func:`~shortlist.keywords.bm25.tokenize`.
            tokens: Their model token counts, summed by :meth:`token_total` (``0`` when not given).

        Raises:
            InputError: ``ids`` and ``texts`` differ in length, or an id or text is not a string (nothing is added).
            StoreError: the index was opened for reading.
        """
        self._require_writer()
        self._check_ids(ids)
        if len(ids) != len(texts) or any(not isinstance(t, str) for t in texts):
            msg = f"add() needs one text (a string) per id: got {len(ids)} ids and {len(texts)} texts."
            raise InputError(msg)
        self.add_terms(ids, [tokenize(text) for text in texts], [text_hash(text) for text in texts], tokens)

    def add_terms(
        self,
        ids: Sequence[str],
        terms: Sequence[Sequence[str]],
        hashes: Sequence[int] | None = None,
        tokens: Sequence[int] | None = None,
    ) -> None:
        """Like :meth:`add`, for texts already cut into BM25 terms by :func:`~shortlist.keywords.bm25.tokenize`.

        Args:
            ids: Chunk ids.
            terms: Each chunk's terms.
            hashes: Each text's :func:`text_hash`, kept for reconciliation with the store (``0`` when not given).
            tokens: Each chunk's model tokens, summed by :meth:`token_total` (``0`` when not given).

        Raises:
            InputError: the lengths differ, or a term is empty or holds white space (nothing is added).
            StoreError: the index was opened for reading.
        """
        writer = self._require_writer()
        self._check_ids(ids)
        hashes = [0] * len(ids) if hashes is None else hashes
        counts = [0] * len(ids) if tokens is None else tokens
        if not len(ids) == len(terms) == len(hashes) == len(counts):
            msg = (
                f"add_terms() needs terms, a hash and a token count per id: got {len(ids)} ids, {len(terms)}, "
                f"{len(hashes)} and {len(counts)}."
            )
            raise InputError(msg)
        docs = []
        tantivy = self._tantivy
        for id_, words, digest, n_tokens in zip(ids, terms, hashes, counts, strict=True):
            joined = " ".join(words)
            if len(joined.split()) != len(words):
                msg = f"The terms of {id_!r} hold an empty term or white space; terms come from bm25.tokenize."
                raise InputError(msg)
            doc = tantivy.Document()
            doc.add_text(_ID, id_)
            doc.add_text(_ALL, _ALL_TERM)
            doc.add_unsigned(_LEN, len(words))
            doc.add_unsigned(_HASH, digest)
            doc.add_unsigned(_TOKENS, max(int(n_tokens), 0))
            doc.add_text(_BODY, joined)
            doc.add_bytes(_TERMS, joined.encode("utf-8"))
            docs.append((id_, doc))
        for id_, doc in docs:  # tantivy applies a delete to the documents added before it, in this batch too
            writer.delete_documents_by_term(_ID, id_)
            writer.add_document(doc)

    def delete(self, ids: Iterable[str]) -> None:
        """Delete documents by id (unknown ids are ignored); visible after :meth:`commit`.

        Raises:
            InputError: an id is not a non-empty string (nothing is deleted).
            StoreError: the index was opened for reading.
        """
        writer = self._require_writer()
        ids = ids if isinstance(ids, str) else list(ids)
        self._check_ids(ids)
        for id_ in ids:
            writer.delete_documents_by_term(_ID, id_)

    def commit(self, position: str | None = None, applied: Mapping[str, int] | None = None) -> int:
        """Make the writes since the last commit visible (to this process now, to readers at their reload).

        Args:
            position: The caller's journal position that this commit brings the index up to; it is written
                beside the index after tantivy's commit (a crash in between leaves the older position, and
                re-applying journal entries after it is harmless: upserts and deletes by id are idempotent).
            applied: Journal keys already applied near the position (key -> time), written with it: the caller
                re-reads a window before the position (for writers' clock differences) and skips these then
                (:meth:`applied`).

        Returns:
            tantivy's opstamp of the commit; a later commit has a larger one.
        """
        writer = self._require_writer()
        try:
            opstamp = int(writer.commit())
        except ValueError as exc:
            msg = f"Committing the keyword index {self.folder} failed ({exc}); its last commit is unchanged."
            raise StoreError(msg) from exc
        if position is not None:
            saved: dict[str, Any] = {"opstamp": opstamp, "position": position}
            if applied:
                saved["applied"] = dict(applied)
            atomic_write(self.folder / _POSITION_FILE, json.dumps(saved))
        self.reload()
        self._view.opstamp = opstamp
        return opstamp

    def rollback(self) -> None:
        """Drop the writes since the last commit."""
        self._require_writer().rollback()

    @staticmethod
    def _check_ids(ids: Sequence[str]) -> None:
        if isinstance(ids, str):
            msg = f"Chunk ids come as a list of strings, not one string ({ids[:40]!r})."
            raise InputError(msg)
        bad = [i for i in ids if not isinstance(i, str) or not i]
        if bad:
            msg = f"Chunk ids must be non-empty strings; got {bad[:3]!r}."
            raise InputError(msg)

    # -- reading ---------------------------------------------------------------------------------------------

    def reload(self) -> None:
        """Show the folder's last commit (a reader sees other processes' commits only after this).

        The new view replaces the old one at once: a search running in another thread finishes on the view it
        started with.
        """
        position, opstamp = self._read_position()  # first: the searcher below is at least as new as the position
        self._index.reload()
        self._view = _View(self._tantivy, self._schema, self._index.searcher(), position, opstamp)

    def _read_position(self) -> tuple[str | None, int]:
        try:
            data = json.loads((self.folder / _POSITION_FILE).read_text(encoding="utf-8"))
            return str(data["position"]), int(data["opstamp"])
        except (OSError, ValueError, KeyError, TypeError):
            return None, -1

    def applied(self) -> dict[str, int]:
        """The journal keys recorded as applied with the last position (see :meth:`commit`); ``{}`` when none."""
        try:
            data = json.loads((self.folder / _POSITION_FILE).read_text(encoding="utf-8"))
            return {str(k): int(v) for k, v in data.get("applied", {}).items()}
        except (OSError, ValueError, TypeError, AttributeError):
            return {}

    @property
    def position(self) -> str | None:
        """The journal position recorded with the last commit this view shows (``None`` when none was)."""
        return self._view.position

    def __len__(self) -> int:
        return self._view.live

    def stats(self) -> SegmentStats:
        """Counts of this view (live and not yet merged deleted documents, segments, mean length)."""
        view = self._view
        return SegmentStats(
            live=view.live,
            deleted=view.all_docs - view.live,
            segments=int(view.searcher.num_segments),
            avgdl=view.avgdl(),
            opstamp=view.opstamp,
            position=view.position,
        )

    def text_hashes(self, ids: Sequence[str]) -> dict[str, int]:
        """The :func:`text_hash` of each of ``ids`` that this view holds (``0``: added by terms without a hash).

        For reconciliation with the store: an id whose store text hashes otherwise changed there.
        """
        view = self._view
        wanted = list(dict.fromkeys(ids))
        if not wanted or not view.live:
            return {}
        searcher = view.searcher
        query = self._tantivy.Query.term_set_query(self._schema, _ID, wanted)
        hits = searcher.search(query, min(len(wanted), view.live), count=False).hits
        addresses = [address for _, address in hits]
        values = searcher.fast_field_values(_HASH, addresses)
        return {
            str(searcher.doc(address).get_first(_ID)): int(value or 0)
            for address, value in zip(addresses, values, strict=True)
        }

    def ids(self) -> list[str]:
        """Every live document's id, in no particular order (for reconciliation: reads each stored id once)."""
        view = self._view
        if not view.live:
            return []
        searcher = view.searcher
        hits = searcher.search(self._tantivy.Query.all_query(), view.live, count=False).hits
        return [str(searcher.doc(address).get_first(_ID)) for _, address in hits]

    def token_total(self) -> int:
        """The sum of the live documents' model token counts (as given to :meth:`add`; once per view)."""
        return self._view.token_total()

    def doc_freq(self, term: str) -> int:
        """Number of live documents holding ``term`` (a BM25 term, as :func:`tokenize` makes them)."""
        return self._view.term_stats(term)[1]

    def search(self, query_text: str, k: int, allowed_ids: Iterable[str] | None = None) -> list[tuple[str, float]]:
        """The ``k`` best ``(id, BM25 score)`` pairs with a score above zero, best first.

        Args:
            query_text: The user's text: tokenised like the documents, never parsed as query syntax.
            k: How many to return at most.
            allowed_ids: Only these ids (a metadata filter already applied), when given.

        Returns:
            ``(id, score)`` pairs, best first.
        """
        view = self._view
        if k <= 0 or view.live == 0:
            return []
        terms = Counter(tokenize(query_text))
        idf = view.live_idf(terms)
        if not idf:
            return []
        query = view.query(terms, idf)
        tantivy = self._tantivy
        if allowed_ids is not None:
            allowed = list(dict.fromkeys(allowed_ids))
            if not allowed:
                return []
            only = tantivy.Query.const_score_query(tantivy.Query.term_set_query(self._schema, _ID, allowed), 0.0)
            query = tantivy.Query.boolean_query([(tantivy.Occur.Must, query), (tantivy.Occur.Must, only)])
        searcher = view.searcher
        if not self.rescore_depth:
            hits = searcher.search(query, min(k, view.live), count=False).hits  # tantivy sizes a heap by the limit
            return [(str(searcher.doc(address).get_first(_ID)), float(score)) for score, address in hits if score > 0]
        depth = min(max(self.rescore_depth, k, math.ceil(self.rescore_factor * k)), view.live)
        hits = searcher.search(query, depth, count=False).hits
        avgdl = view.avgdl() or 1.0
        weights = [(term, terms[term] * weight) for term, weight in idf.items()]
        scored: list[tuple[str, float]] = []
        for _, address in hits:
            doc = searcher.doc(address)
            score = self._bm25(weights, _kept_terms(doc), avgdl)
            if score > 0:
                scored.append((str(doc.get_first(_ID)), score))
        scored.sort(key=lambda pair: -pair[1])  # stable: tantivy's order breaks ties
        return scored[:k]

    def _bm25(self, weights: Sequence[tuple[str, float]], words: list[str], avgdl: float) -> float:
        """bm25s's score of one document (its terms) for ``(term, occurrences in the query x idf)`` pairs."""
        norm = self.k1 * (1.0 - self.b + self.b * len(words) / avgdl)
        total = 0.0
        for term, weight in weights:
            tf = words.count(term)
            if tf:
                total += weight * tf / (tf + norm)
        return total

    def score_ids(self, query_text: str, ids: Sequence[str]) -> list[float | None]:
        """:meth:`score_texts` of the indexed chunks ``ids``, from the terms kept with them (no tokenising).

        ``None`` for an id the index does not hold. The terms are those the text had when it was indexed, so for
        a chunk in step with the store the score is :meth:`score_texts` of its text, without the cost of
        tokenising it (or of loading jieba for a text with a few Chinese characters in an English collection).
        """
        view = self._view
        out: list[float | None] = [None] * len(ids)
        if not ids:
            return out
        idf = view.live_idf(dict.fromkeys(tokenize(query_text))) if view.live else {}
        avgdl = view.avgdl() or 1.0
        weights = list(idf.items())
        tantivy, searcher = self._tantivy, view.searcher
        for i, id_ in enumerate(ids):
            hits = searcher.search(tantivy.Query.term_query(self._schema, _ID, id_), 1, count=False).hits
            if not hits:
                continue
            if not weights:
                out[i] = 0.0
                continue
            words = _kept_terms(searcher.doc(hits[0][1]))
            out[i] = self._bm25(weights, words, avgdl) if words else 0.0
        return out

    def score_texts(self, query_text: str, texts: Sequence[str]) -> list[float]:
        """BM25 score of ``query_text`` against texts that are not in the index, with the live statistics.

        Each text is scored as if it were one more document (live ``N``, document frequencies and mean length, this
        index's ``k1`` and ``b``, the text's exact length), each query term once, so the score is comparable with
        :meth:`search`'s. For the hybrid calibration, as ``KeywordIndex.score_texts`` (the same value when
        rescoring).
        """
        view = self._view
        out = [0.0] * len(texts)
        if not view.live or not texts:
            return out
        idf = view.live_idf(dict.fromkeys(tokenize(query_text)))
        if not idf:
            return out
        avgdl = view.avgdl() or 1.0
        weights = list(idf.items())
        for i, text in enumerate(texts):
            words = tokenize(text)
            if words:
                out[i] = self._bm25(weights, words, avgdl)
        return out


def _kept_terms(doc: Any) -> list[str]:
    """A stored document's BM25 terms, as :func:`~shortlist.keywords.bm25.tokenize` made them at indexing."""
    return bytes(doc.get_first(_TERMS)).decode("utf-8").split()


class _View:
    """One commit as a reader sees it: tantivy's searcher and the live statistics, cached per term."""

    def __init__(self, tantivy: Any, schema: Any, searcher: Any, position: str | None, opstamp: int) -> None:
        self._tantivy = tantivy
        self._schema = schema
        self.searcher = searcher
        self.position = position
        self.opstamp = opstamp
        self.live = int(searcher.num_docs)
        #: tantivy's N: live documents and deleted ones no merge has dropped yet.
        self.all_docs = int(searcher.doc_freq(_ALL, _ALL_TERM))
        self._df: dict[str, tuple[int, int]] = {}
        self._avgdl: float | None = None
        self._tokens: int | None = None

    def _sum(self, field: str) -> float:
        if not self.live:
            return 0.0
        agg = self.searcher.aggregate(self._tantivy.Query.all_query(), {"n": {"sum": {"field": field}}})
        return float(agg["n"]["value"] or 0.0)

    def token_total(self) -> int:
        """Sum of the live documents' model token counts (an aggregation, once per view)."""
        if self._tokens is None:
            self._tokens = round(self._sum(_TOKENS))
        return self._tokens

    def avgdl(self) -> float:
        """Mean number of terms of a live document (an aggregation over the stored lengths, once per view)."""
        if self._avgdl is None:
            self._avgdl = self._sum(_LEN) / self.live if self.live else 0.0
        return self._avgdl

    def term_stats(self, term: str) -> tuple[int, int]:
        """``(document frequency as tantivy's BM25 sees it, live document frequency)`` of a term."""
        cached = self._df.get(term)
        if cached is not None:
            return cached
        df_all = int(self.searcher.doc_freq(_BODY, term))
        df_live = df_all
        if df_all and self.all_docs != self.live:  # deleted documents not merged away yet: count live ones
            query = self._tantivy.Query.term_query(self._schema, _BODY, term, index_option="freq")
            df_live = int(self.searcher.search(query, 1, count=True).count)
        self._df[term] = (df_all, df_live)
        return df_all, df_live

    def live_idf(self, terms: Iterable[str]) -> dict[str, float]:
        """Live IDF of each term that a live document holds."""
        idf: dict[str, float] = {}
        for term in terms:
            df_live = self.term_stats(term)[1]
            if df_live:
                idf[term] = _idf(df_live, self.live)
        return idf

    def query(self, terms: Mapping[str, int], idf: Mapping[str, float]) -> Any:
        """The query for tantivy: a should-clause per term, boosted from tantivy's IDF to the live one."""
        tantivy = self._tantivy
        clauses = []
        for term, weight in idf.items():
            # tantivy scores (k1 + 1) * idf(n_all, N_all) * tf-part; rescale to idf(n_live, N_live) * tf-part, once
            # per occurrence of the term in the query (as bm25s sums a repeated query term).
            boost = terms[term] * weight / (_idf(self.term_stats(term)[0], self.all_docs) * (LIVE_K1 + 1.0))
            term_query = tantivy.Query.term_query(self._schema, _BODY, term, index_option="freq")
            clauses.append((tantivy.Occur.Should, tantivy.Query.boost_query(term_query, boost)))
        return tantivy.Query.boolean_query(clauses)
