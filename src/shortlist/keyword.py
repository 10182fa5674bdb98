"""The old home of the keyword index, which lives in :mod:`shortlist.keywords.bm25` now.

It moved (BM25 over the store's chunks, Chinese cut by jieba) because this module's name shadows the standard
library's ``keyword``.

Every name is re-exported here, so ``from shortlist.keyword import KeywordIndex, tokenize`` keeps working.
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
