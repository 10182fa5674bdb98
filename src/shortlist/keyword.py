r"""Keyword index for hybrid search: BM25 (``bm25s``) over the store's chunks, with Chinese cut by ``jieba``.

Tokenisation (:func:`tokenize`): :func:`shortlist.text.clean_text`, lower case, then runs of CJK characters are cut
into words by jieba (search mode off: one segmentation), and other text into ``\w+`` words; English stop words and
the commonest Chinese function words are dropped, and English words are stemmed (Snowball, via PyStemmer, when it
is installed). Numbers are kept.

The index is built from the store's chunks, not fed separately, so it can never hold a chunk the store does not
have. :class:`KeywordIndex` keeps ids in the same order as bm25s's rows; :meth:`KeywordIndex.search` returns
``(id, bm25 score)`` pairs, best first.

The code lives in :mod:`shortlist.keywords.bm25` (this module's name shadows the standard library's ``keyword``); it is
re-exported here under the old names.

Example:
    ```python
    from shortlist.keyword import KeywordIndex, tokenize

    print(tokenize("Running studies on 北京大学的学生"))
    # ['run', 'studi', '北京大学', '学生']
    index = KeywordIndex.build([("a", "cats purr"), ("b", "dogs bark loudly")])
    print(index.search("barking dog", 2))
    # [('b', 0.70...)]
    ```
"""

from __future__ import annotations

from shortlist.keywords.bm25 import (
    _CJK_RUN,
    _IDS_FILE,
    _STOPWORDS_ZH,
    BM25_B,
    BM25_K1,
    INDEX_VERSION,
    KeywordIndex,
    _jieba,
    _latin_terms,
    _stemmer,
    _stopwords,
    tokenize,
)

__all__ = ["BM25_B", "BM25_K1", "INDEX_VERSION", "KeywordIndex", "tokenize"]

_ = (_CJK_RUN, _IDS_FILE, _STOPWORDS_ZH, _jieba, _latin_terms, _stemmer, _stopwords)  # old private names
