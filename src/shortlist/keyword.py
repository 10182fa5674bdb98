r"""Keyword index for hybrid search: BM25 (``bm25s``) over the store's chunks, with Chinese cut by ``jieba``.

Tokenisation (:func:`tokenize`): :func:`shortlist.text.clean_text`, lower case, then runs of CJK characters are cut
into words by jieba (search mode off: one segmentation), and other text into ``\w+`` words; English stop words are
dropped and English words are stemmed (Snowball, via PyStemmer, when it is installed). Numbers are kept.

The index is built from the store's chunks, not fed separately, so it can never hold a chunk the store does not
have. :class:`KeywordIndex` keeps ids in the same order as bm25s's rows; :meth:`KeywordIndex.search` returns
``(id, bm25 score)`` pairs, best first.

Example:
    ```python
    from shortlist.keyword import KeywordIndex, tokenize

    print(tokenize("Running studies on 北京大学的学生"))
    # ['run', 'studi', '北京大学', '学生']
    index = KeywordIndex.build([("a", "cats purr"), ("b", "dogs bark loudly")])
    print(index.search("barking dog", 2))
    # [('b', 0.94...)]
    ```
"""

from __future__ import annotations

import functools
import logging
import re
import threading
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from shortlist.errors import MissingDependencyError
from shortlist.text import clean_text

__all__ = ["BM25_B", "BM25_K1", "KeywordIndex", "tokenize"]

logger = logging.getLogger(__name__)

#: BM25 parameters: the values BEIR's Elasticsearch baseline and Anserini use on short passages.
BM25_K1 = 0.9
BM25_B = 0.4

_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_WORD = re.compile(r"\w+", re.UNICODE)
_jieba_lock = threading.Lock()


@functools.lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    try:
        from bm25s.stopwords import STOPWORDS_EN
    except ImportError:  # pragma: no cover - bm25s always ships them
        return frozenset()
    return frozenset(STOPWORDS_EN)


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
        out.extend(w for w in jieba.lcut(match.group(), HMM=True) if w.strip() and _WORD.search(w))
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

    def __init__(self, ids: Sequence[str], retriever: Any, fingerprint: str = "") -> None:
        self.ids = list(ids)
        self._retriever = retriever
        self.fingerprint = fingerprint

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
        return cls(ids, retriever, fingerprint)

    def __len__(self) -> int:
        return len(self.ids)

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
