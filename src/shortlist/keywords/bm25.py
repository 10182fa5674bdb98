r"""The keyword index of hybrid search: BM25 (``bm25s``) over the store's chunks, with Chinese cut by ``jieba``.

Tokenisation (:func:`tokenize`): :func:`shortlist.text.clean_text`, lower case, then runs of CJK characters are cut
into words by jieba (search mode off: one segmentation), and other text into ``\w+`` words; English stop words and
the commonest Chinese function words are dropped, and English words are stemmed (Snowball, via PyStemmer, when it
is installed). Numbers are kept.

The index is built from the store's chunks, not fed separately, so it can never hold a chunk the store does not
have. :class:`KeywordIndex` keeps ids in the same order as bm25s's rows; :meth:`KeywordIndex.search` returns
``(id, bm25 score)`` pairs, best first.

Example:
    ```python
    from shortlist.keywords import KeywordIndex, tokenize

    print(tokenize("Running studies on 北京大学的学生"))
    # ['run', 'studi', '北京大学', '学生']
    index = KeywordIndex.build([("a", "cats purr"), ("b", "dogs bark loudly")])
    print(index.search("barking dog", 2))
    # [('b', 0.70...)]
    ```
"""

from __future__ import annotations

import functools
import importlib.util
import json
import logging
import re
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from shortlist._io import atomic_dir
from shortlist.errors import MissingDependencyError
from shortlist.text import HAN_CHARS, clean_text

__all__ = ["BM25_B", "BM25_K1", "INDEX_VERSION", "KeywordIndex", "tokenize"]

logger = logging.getLogger(__name__)

#: BM25 parameters: the values BEIR's Elasticsearch baseline and Anserini use on short passages.
BM25_K1 = 0.9
BM25_B = 0.4
#: Changes whenever :func:`tokenize` or the BM25 parameters change: a saved index of another version is rebuilt.
INDEX_VERSION = f"3:{BM25_K1}:{BM25_B}"

_CJK_RUN = re.compile(rf"[{HAN_CHARS}]+")  # runs of Chinese characters, cut by jieba (kana and Hangul: \w+ words)
_WORD = re.compile(r"\w+", re.UNICODE)
_jieba_lock = threading.Lock()
_IDS_FILE = "shortlist-ids.json"


#: The commonest Chinese function words (particles, pronouns, conjunctions): they carry no topic.
_STOPWORDS_ZH = frozenset(
    "的 了 是 在 和 与 及 或 也 就 都 而 着 之 其 这 那".split() + "我 你 他 她 它 们 吗 呢 吧 啊 被 把 给 对".split()
)


@functools.lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    """bm25s's English stop words and the Chinese ones above.

    Read from bm25s's ``stopwords.py`` without importing the ``bm25s`` package: a process that only searches the
    live index never pays for bm25s's imports.
    """
    spec = importlib.util.find_spec("bm25s")
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        path = Path(folder) / "stopwords.py"
        if path.is_file():
            loader_spec = importlib.util.spec_from_file_location("_shortlist_bm25s_stopwords", path)
            if loader_spec is not None and loader_spec.loader is not None:
                module = importlib.util.module_from_spec(loader_spec)
                loader_spec.loader.exec_module(module)  # plain tuples of strings, no imports
                return frozenset(module.STOPWORDS_EN) | _STOPWORDS_ZH
    try:  # pragma: no cover - bm25s laid out otherwise
        from bm25s.stopwords import STOPWORDS_EN
    except ImportError:  # pragma: no cover - bm25s always ships them
        return _STOPWORDS_ZH
    return frozenset(STOPWORDS_EN) | _STOPWORDS_ZH


@functools.lru_cache(maxsize=1)
def _stemmer() -> Any:
    try:
        import Stemmer
    except ImportError:
        logger.info("PyStemmer is not installed: keyword search runs without stemming (`pip install PyStemmer`).")
        return None
    return Stemmer.Stemmer("english")


def _jieba() -> Any:
    try:
        import jieba
    except ImportError as exc:  # pragma: no cover - a core dependency
        msg = "Keyword search on Chinese text needs jieba: `pip install jieba`."
        raise MissingDependencyError(msg) from exc
    with _jieba_lock:
        if not getattr(jieba.dt, "initialized", False):
            jieba.setLogLevel(logging.WARNING)
            jieba.initialize()
    return jieba


def tokenize(text: str) -> list[str]:
    """Cut text into BM25 terms (see the module docstring)."""
    text = clean_text(text).lower()
    stop = _stopwords()
    out: list[str] = []
    pos = 0
    for match in _CJK_RUN.finditer(text):
        out.extend(_latin_terms(text[pos : match.start()], stop))
        jieba = _jieba()
        out.extend(w for w in jieba.lcut(match.group(), HMM=True) if w.strip() and _WORD.search(w) and w not in stop)
        pos = match.end()
    out.extend(_latin_terms(text[pos:], stop))
    return out


def _latin_terms(text: str, stop: frozenset[str]) -> list[str]:
    words = [w for w in _WORD.findall(text) if w not in stop]
    stemmer = _stemmer()
    if stemmer is not None and words:
        return list(stemmer.stemWords(words))
    return words


class KeywordIndex:
    """A BM25 index over (id, text) pairs. Immutable once built: rebuild it when the corpus changes.

    Args:
        ids: The chunks' ids, in row order.
        retriever: A built ``bm25s.BM25`` (or ``None`` for an empty corpus).
        fingerprint: What the index was built from (the store's count and a hash of its ids), for staleness checks.
    """

    def __init__(self, ids: Sequence[str], retriever: Any, fingerprint: str = "", avgdl: float = 0.0) -> None:
        self.ids = list(ids)
        self._retriever = retriever
        self.fingerprint = fingerprint
        #: Mean number of terms per indexed text (BM25's length normalisation), for :meth:`score_texts`.
        self.avgdl = float(avgdl)
        self._df: np.ndarray[Any, np.dtype[np.int64]] | None = None

    @classmethod
    def build(cls, items: Iterable[tuple[str, str]], *, fingerprint: str = "") -> KeywordIndex:
        """Index ``(id, text)`` pairs."""
        try:
            import bm25s
        except ImportError as exc:  # pragma: no cover - a core dependency
            msg = "Keyword and hybrid search need bm25s: `pip install bm25s`."
            raise MissingDependencyError(msg) from exc
        ids: list[str] = []
        corpus: list[list[str]] = []
        for id_, text in items:
            ids.append(id_)
            corpus.append(tokenize(text))
        if not ids:
            return cls([], None, fingerprint)
        retriever = bm25s.BM25(k1=BM25_K1, b=BM25_B)
        retriever.index(corpus, show_progress=False)
        avgdl = sum(len(terms) for terms in corpus) / len(corpus)
        return cls(ids, retriever, fingerprint, avgdl)

    def __len__(self) -> int:
        return len(self.ids)

    def save(self, folder: str | Path) -> None:
        """Write the index to ``folder`` (bm25s's files plus ``shortlist-ids.json``); written whole, then renamed."""
        with atomic_dir(folder) as tmp:
            if self._retriever is not None:
                self._retriever.save(str(tmp), show_progress=False)
            (tmp / _IDS_FILE).write_text(
                json.dumps({"fingerprint": self.fingerprint, "avgdl": self.avgdl, "ids": self.ids}), encoding="utf-8"
            )

    @classmethod
    def load(cls, folder: str | Path) -> KeywordIndex | None:
        """Read an index written by :meth:`save`; ``None`` if there is none or it cannot be read."""
        folder = Path(folder)
        try:
            meta = json.loads((folder / _IDS_FILE).read_text(encoding="utf-8"))
            ids = [str(i) for i in meta["ids"]]
            fingerprint = str(meta["fingerprint"])
            avgdl = float(meta.get("avgdl", 0.0))
            retriever = None
            if ids:
                import bm25s

                retriever = bm25s.BM25.load(str(folder), show_progress=False, verbosity=0)
        except Exception as exc:  # a missing, partial or foreign folder: rebuild instead
            logger.debug("No usable keyword index in %s (%s)", folder, exc)
            return None
        return cls(ids, retriever, fingerprint, avgdl)

    def scores(self, query: str) -> np.ndarray[Any, np.dtype[np.float32]]:
        """BM25 score of every row for ``query`` (zeros when no term is known)."""
        if self._retriever is None:
            return np.zeros(0, dtype=np.float32)
        terms = tokenize(query)
        vocab = self._retriever.vocab_dict
        known = [t for t in terms if t in vocab]
        if not known:
            return np.zeros(len(self.ids), dtype=np.float32)
        return np.asarray(self._retriever.get_scores(known), dtype=np.float32)

    def search(self, query: str, k: int, *, allowed: set[str] | None = None) -> list[tuple[str, float]]:
        """The ``k`` best ``(id, score)`` pairs with a score above zero, best first.

        Args:
            query: The question.
            k: How many to return at most.
            allowed: Only ids in this set (a metadata filter already applied), when given.
        """
        scores = self.scores(query)
        if scores.size == 0 or k <= 0:
            return []
        if allowed is not None:
            mask = np.fromiter((i in allowed for i in self.ids), dtype=bool, count=len(self.ids))
            scores = np.where(mask, scores, 0.0)
        positive = int(np.count_nonzero(scores > 0))
        n = min(k, positive)
        if n == 0:
            return []
        top = np.argpartition(-scores, n - 1)[:n]
        top = top[np.lexsort((top, -scores[top]))]
        return [(self.ids[i], float(scores[i])) for i in top]

    def score_texts(self, query: str, texts: Sequence[str]) -> np.ndarray[Any, np.dtype[np.float32]]:
        """BM25 score of ``query`` against texts that are not in the index, with the index's statistics.

        Each text is scored as if it were one more row of the index (the index's document frequencies, row count
        and mean length), so its score is comparable with :meth:`scores`. Hybrid-search calibration uses it to
        score a chunk with one of its sentences taken out.
        """
        out = np.zeros(len(texts), dtype=np.float32)
        if self._retriever is None or not texts:
            return out
        vocab = self._retriever.vocab_dict
        known = [t for t in dict.fromkeys(tokenize(query)) if t in vocab]
        if not known:
            return out
        if self._df is None:
            indptr = np.asarray(self._retriever.scores["indptr"], dtype=np.int64)
            self._df = np.diff(indptr)
        n = len(self.ids)
        avgdl = self.avgdl if self.avgdl > 0 else 1.0
        idf = {t: float(np.log(1.0 + (n - self._df[vocab[t]] + 0.5) / (self._df[vocab[t]] + 0.5))) for t in known}
        for i, text in enumerate(texts):
            terms = tokenize(text)
            if not terms:
                continue
            norm = BM25_K1 * (1.0 - BM25_B + BM25_B * len(terms) / avgdl)
            counts: dict[str, int] = {}
            for term in terms:
                if term in idf:
                    counts[term] = counts.get(term, 0) + 1
            out[i] = sum(idf[t] * tf / (tf + norm) for t, tf in counts.items())
        return out
