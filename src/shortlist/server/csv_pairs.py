"""The CSV files of ``POST /api/similarity/csv``: two text columns in, the same rows with their scores out."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

from shortlist.server.errors import ApiError

__all__ = ["CSV_HEADER_NAMES", "read_pairs_csv", "scored_csv", "scored_filename"]

#: First-row cells that make it a header when ``header=auto``.
CSV_HEADER_NAMES = frozenset(
    {"text1", "text2", "text_1", "text_2", "text a", "text b", "text_a", "text_b", "a", "b", "sentence1",
     "sentence2", "sentence_1", "sentence_2", "left", "right", "query", "document", "source", "target"}
)  # fmt: skip


def read_pairs_csv(raw: bytes, header: str, max_rows: int) -> tuple[list[tuple[str, str]], tuple[str, str] | None]:
    """Rows of a two-column CSV file and its header (``None`` if it has none).

    Args:
        raw: The uploaded file (UTF-8, a BOM allowed; comma-, tab- or semicolon-separated).
        header: ``"yes"``, ``"no"`` or ``"auto"`` (a header when both first cells are known column names).
        max_rows: Most rows after the header.

    Raises:
        ApiError: 400 for a file that is not UTF-8 or CSV, is empty, has too many rows or a row without two cells.
    """
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        msg = f"The CSV file is not UTF-8 (byte {exc.start}): save it as UTF-8 and upload again."
        raise ApiError(400, msg, param="file") from exc
    first_line = text.split("\n", 1)[0]
    delimiter = ","
    if "," not in first_line:  # a tab- or semicolon-separated export
        delimiter = "\t" if "\t" in first_line else (";" if ";" in first_line else ",")
    try:
        rows = [r for r in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter) if any(c.strip() for c in r)]
    except csv.Error as exc:
        msg = f"The CSV file could not be read: {exc}."
        raise ApiError(400, msg, param="file") from exc
    if not rows:
        msg = "The CSV file has no rows: give two columns of texts, one pair per line."
        raise ApiError(400, msg, param="file")
    head: tuple[str, str] | None = None
    first = rows[0]
    is_header = header == "yes" or (
        header == "auto" and len(first) == 2 and all(c.strip().lower() in CSV_HEADER_NAMES for c in first)
    )
    if is_header:
        if len(first) != 2:
            msg = f"The CSV header has {len(first)} columns; it needs exactly two (text1, text2)."
            raise ApiError(400, msg, param="file")
        head = (first[0], first[1])
        rows = rows[1:]
    if len(rows) > max_rows:
        msg = f"The CSV file has {len(rows):,} rows; the limit is {max_rows:,}: split it."
        raise ApiError(400, msg, param="file")
    pairs: list[tuple[str, str]] = []
    for n, row in enumerate(rows, start=2 if head else 1):
        if len(row) != 2:
            msg = f"Line {n} of the CSV file has {len(row)} columns; every line needs exactly two texts."
            raise ApiError(400, msg, param="file")
        pairs.append((row[0], row[1]))
    return pairs, head


def scored_csv(
    rows: Sequence[tuple[str, str]], scores: Sequence[float], head: tuple[str, str] | None, threshold: float | None
) -> str:
    """The rows with a ``similarity`` column (6 decimals) and, given a threshold, a ``match`` column (yes/no)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    names = list(head or ("text1", "text2")) + ["similarity"] + (["match"] if threshold is not None else [])
    writer.writerow(names)
    for (a, b), s in zip(rows, scores, strict=True):
        extra = [("yes" if s >= threshold else "no")] if threshold is not None else []
        writer.writerow([a, b, f"{s:.6f}", *extra])
    return out.getvalue()


def scored_filename(uploaded: str | None) -> str:
    """The answer's file name: the upload's stem, made safe, with ``-scored.csv``."""
    stem = Path(uploaded or "pairs.csv").stem or "pairs"
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in stem)[:80]
    return f"{safe}-scored.csv"
