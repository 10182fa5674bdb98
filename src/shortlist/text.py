r"""Text clean-up and token-aware splitting.

``clean_text`` makes text from the wild (PDF copies, web pages, CJK input methods) comparable: NFKC (full-width
letters, digits and punctuation become their ASCII forms, U+3000 becomes a space), tabs and runs of spaces fold to
one space, runs of blank lines to one blank line, control and zero-width characters go.

``split_text`` cuts text into chunks of at most ``max_tokens`` model tokens (word pieces, not counting ``[CLS]``
and ``[SEP]``), on sentence ends (``. ? !`` and ``。？！；``) and newlines where it can, and by token windows inside
a single over-long sentence (Chinese without spaces included). No chunk is ever over the limit.

Example:
    ```python
    from shortlist.text import clean_text, split_text

    print(clean_text("Ｈｅｌｌｏ\u3000world\t!"))
    # Hello world !
    chunks = split_text("One. Two! Three?", max_tokens=4, overlap=0)
    print(chunks)
    # ['One. Two!', 'Three?']
    ```
"""

from __future__ import annotations

import functools
import re
import threading
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from shortlist.errors import ConfigError, InputError

if TYPE_CHECKING:
    from tokenizers import Tokenizer

__all__ = [
    "CJK_CHARS",
    "CJK_SCRIPT_CHARS",
    "DEFAULT_CHUNK_OVERLAP",
    "DEFAULT_CHUNK_TOKENS",
    "HAN_CHARS",
    "clean_text",
    "count_tokens",
    "default_tokenizer",
    "load_tokenizer",
    "split_sentences",
    "split_text",
    "token_windows",
]

#: Chunk size used by ingest: half the model's 256-token window leaves room for precise hits.
DEFAULT_CHUNK_TOKENS = 128
DEFAULT_CHUNK_OVERLAP = 16

_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))
_SPACES = re.compile(r"[^\S\n]+")  # whitespace other than newline
_SPACE_AROUND_NEWLINE = re.compile(r" ?\n ?")
_BLANK_LINES = re.compile(r"\n{3,}")
#: Unicode category Cc (control characters: U+0000-U+001F and U+007F-U+009F) except tab and newline.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
#: CJK character ranges (bodies of a regex character class), defined once. Each user takes the blocks it means:
#: keyword search cuts runs of Chinese characters (:data:`HAN_CHARS`) with jieba; the fusion's script test counts
#: kana, Chinese characters and Hangul syllables (:data:`CJK_SCRIPT_CHARS`); sentence splitting (here) also treats
#: radicals, bopomofo and kanbun/strokes as CJK (:data:`CJK_CHARS`).
HAN_CHARS = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
CJK_SCRIPT_CHARS = r"\u3040-\u30ff" + HAN_CHARS + r"\uac00-\ud7af"
CJK_CHARS = r"\u2e80-\u2fdf\u3100-\u312f\u3190-\u31ff" + CJK_SCRIPT_CHARS
_CJK = CJK_CHARS
# A sentence ends after CJK end punctuation (always), after . ? ! followed by white space (or closing quotes and
# brackets then white space), after ? ! ; right behind a CJK character (NFKC turns ？！； into ASCII), and at newlines.
_SENTENCE_END = re.compile(
    rf"(?<=[。！？；…])(?![。！？；…”’」』）)])"
    r"|(?<=[.?!])\s+|(?<=[.?!][\"'”’)\]])\s+"
    rf"|(?<=[{_CJK}][?!;])(?![?!;])"
    r"|\n+"
)


def clean_text(text: str) -> str:
    r"""Normalise text for embedding and keyword search.

    Steps: Unicode NFKC; zero-width characters removed; control characters other than newline and tab removed;
    ``\r\n`` and ``\r`` become ``\n``; runs of spaces and tabs (including U+3000, which NFKC makes a space)
    become one space; spaces around newlines go; three or more newlines become two; leading and trailing white
    space is stripped.

    Args:
        text: Any string.

    Returns:
        The cleaned string (possibly empty).

    Raises:
        InputError: if ``text`` is not a ``str``.
    """
    if not isinstance(text, str):
        msg = f"clean_text expects a str, got {type(text).__name__}."
        raise InputError(msg)
    text = unicodedata.normalize("NFKC", text).translate(_ZERO_WIDTH)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text)
    text = _SPACES.sub(" ", text)
    text = _SPACE_AROUND_NEWLINE.sub("\n", text)
    text = _BLANK_LINES.sub("\n\n", text)
    return text.strip()


def split_sentences(text: str) -> list[str]:
    """Split text into sentences on ``. ? !`` (followed by white space), ``。？！；`` and newlines.

    Empty pieces are dropped; each piece is stripped.
    """
    return [piece.strip() for piece in _SENTENCE_END.split(text) if piece and piece.strip()]


@functools.lru_cache(maxsize=8)
def _load_tokenizer_file(path: str) -> Tokenizer:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(path)
    # The packaged tokenizer.json pads and truncates at 128: counting and splitting need the whole text.
    tok.no_padding()
    tok.no_truncation()
    return tok


def load_tokenizer(model_dir: str | Path) -> Tokenizer:
    """Load the fast (Rust) tokenizer of a local model folder, with padding and truncation turned off.

    Raises:
        ConfigError: if the folder has no ``tokenizer.json``.
    """
    path = Path(model_dir) / "tokenizer.json"
    if not path.is_file():
        msg = f"{path} does not exist: shortlist needs a fast tokenizer (tokenizer.json) in the model folder."
        raise ConfigError(msg)
    return _load_tokenizer_file(str(path.resolve()))


_default_lock = threading.Lock()


def default_tokenizer() -> Tokenizer:
    """The tokenizer of the default model (the packaged all-MiniLM-L6-v2 weights), loaded once."""
    from shortlist.model import packaged_model_path

    with _default_lock:
        return load_tokenizer(packaged_model_path())


def count_tokens(text: str, tokenizer: Tokenizer | None = None) -> int:
    """Number of word pieces in ``text`` (without ``[CLS]``/``[SEP]``) for ``tokenizer`` (default model's if None)."""
    tok = tokenizer or default_tokenizer()
    return len(tok.encode(text, add_special_tokens=False).ids)


def _check_limits(max_tokens: int, overlap: int) -> None:
    if not isinstance(max_tokens, int) or max_tokens < 1:
        msg = f"max_tokens must be a positive int, got {max_tokens!r}."
        raise ConfigError(msg)
    if not isinstance(overlap, int) or overlap < 0 or overlap >= max_tokens:
        msg = f"overlap must be an int in [0, max_tokens), got {overlap!r} with max_tokens={max_tokens}."
        raise ConfigError(msg)


def token_windows(text: str, max_tokens: int, overlap: int = 0, tokenizer: Tokenizer | None = None) -> list[str]:
    """Cut ``text`` into consecutive windows of at most ``max_tokens`` word pieces.

    Windows start and end on word boundaries where possible (every CJK character is a word), and cut inside a word
    only when one word is longer than a window. Consecutive windows share ``overlap`` tokens.

    Returns:
        The windows as substrings of ``text``; ``[text]`` if it fits; ``[]`` for text with no tokens.
    """
    _check_limits(max_tokens, overlap)
    tok = tokenizer or default_tokenizer()
    enc = tok.encode(text, add_special_tokens=False)
    n = len(enc.ids)
    if n <= max_tokens:
        return [text] if n else []
    offsets = enc.offsets
    words = enc.word_ids
    # A token may start a window if it starts a word (its word id differs from the one before).
    starts_word = [i == 0 or words[i] is None or words[i] != words[i - 1] for i in range(n)]
    windows: list[str] = []
    start = 0
    while start < n:
        end = min(start + max_tokens, n)
        if end < n:
            cut = end
            while cut > start + 1 and not starts_word[cut]:
                cut -= 1
            if cut > start + 1:
                end = cut
        piece = text[offsets[start][0] : offsets[end - 1][1]]
        # Re-tokenising a substring cut inside a word can cost a piece more: shrink until it fits.
        while end - start > 1 and len(tok.encode(piece, add_special_tokens=False).ids) > max_tokens:
            end -= 1
            piece = text[offsets[start][0] : offsets[end - 1][1]]
        windows.append(piece.strip())
        if end >= n:
            break
        nxt = max(end - overlap, start + 1)
        while overlap and nxt < end and not starts_word[nxt]:
            nxt += 1  # start the overlap on a word boundary
        start = nxt
    return [w for w in windows if w]


def split_text(
    text: str,
    max_tokens: int = DEFAULT_CHUNK_TOKENS,
    overlap: int = DEFAULT_CHUNK_OVERLAP,
    tokenizer: Tokenizer | None = None,
) -> list[str]:
    """Split text into chunks of at most ``max_tokens`` word pieces, cutting on sentence ends where it can.

    Sentences are packed greedily into chunks. When a chunk is full, the next one starts with the last sentences of
    the previous one whose tokens add up to at most ``overlap`` (context carried across the cut). A sentence longer
    than ``max_tokens`` is cut into token windows (see :func:`token_windows`).

    Args:
        text: The text; call :func:`clean_text` first for text from the wild.
        max_tokens: The most word pieces in one chunk (``[CLS]``/``[SEP]`` not counted). Default 128.
        overlap: Tokens of context repeated from the end of one chunk at the start of the next. Default 16.
        tokenizer: A ``tokenizers.Tokenizer``; default: the default model's.

    Returns:
        The chunks, in order; ``[]`` for empty or white-space-only text.

    Raises:
        InputError: if ``text`` is not a ``str``.
        ConfigError: if ``max_tokens`` or ``overlap`` is out of range.
    """
    if not isinstance(text, str):
        msg = f"split_text expects a str, got {type(text).__name__}."
        raise InputError(msg)
    _check_limits(max_tokens, overlap)
    tok = tokenizer or default_tokenizer()
    sentences = split_sentences(text)
    if not sentences:
        return []
    counts = [len(e.ids) for e in tok.encode_batch(sentences, add_special_tokens=False)]
    pieces: list[tuple[str, int]] = []
    for sentence, count in zip(sentences, counts, strict=True):
        if count <= max_tokens:
            if count:
                pieces.append((sentence, count))
            continue
        win_overlap = min(overlap, max_tokens // 2)
        for window in token_windows(sentence, max_tokens, win_overlap, tok):
            pieces.append((window, len(tok.encode(window, add_special_tokens=False).ids)))
    return _pack(pieces, max_tokens, overlap, tok)


def _join(parts: Sequence[str]) -> str:
    out = parts[0]
    for part in parts[1:]:
        # No space between two CJK sentences ("你好。世界。"), a space elsewhere.
        glue = "" if re.match(rf"[{_CJK}]", part[:1]) and re.search(rf"[{_CJK}。！？；…]$", out) else " "
        out = out + glue + part
    return out


def _pack(pieces: list[tuple[str, int]], max_tokens: int, overlap: int, tok: Tokenizer) -> list[str]:
    chunks: list[str] = []
    current: list[tuple[str, int]] = []
    total = 0
    for piece in pieces:
        if current and total + piece[1] > max_tokens:
            chunks.append(_join([p for p, _ in current]))
            carried: list[tuple[str, int]] = []
            carried_total = 0
            for prev in reversed(current):
                if carried_total + prev[1] > overlap or carried_total + prev[1] + piece[1] > max_tokens:
                    break
                carried.insert(0, prev)
                carried_total += prev[1]
            current, total = carried, carried_total
        current.append(piece)
        total += piece[1]
    if current:
        chunks.append(_join([p for p, _ in current]))
    # Token counts of joined text equal the sum of the parts for WordPiece (it splits on spaces and punctuation);
    # check anyway so the promise "never over the limit" holds for any tokenizer.
    out: list[str] = []
    for chunk in chunks:
        if len(tok.encode(chunk, add_special_tokens=False).ids) <= max_tokens:
            out.append(chunk)
        else:
            out.extend(token_windows(chunk, max_tokens, 0, tok))
    return out
