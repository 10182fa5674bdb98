"""Bulk ingest on Ray: index a corpus too big for one machine into a Chroma server.

:func:`index` reads files (or takes a ``ray.data.Dataset``), and a Ray Data actor pool chunks, embeds (one
:class:`~shortlist.encoder.Encoder` per actor, loaded once) and writes the chunks to a Chroma server in batches,
with the ids, texts and metadata ``shortlist index`` gives them. Ray is an extra (``pip install
'shortlist[distributed]'``) and is imported only when :func:`index` runs; ``import shortlist`` never imports it.
See docs/distributed.md.

Example:
    ```python
    from shortlist.distributed import index

    report = index(["notes/"], collection="notes", host="127.0.0.1", port=8000)
    print(report.chunks, round(report.chunks_per_second))
    ```
"""

from __future__ import annotations

from shortlist.distributed.report import DistributedReport, WorkerReport
from shortlist.distributed.runner import EXTRA_HINT, import_ray, index

__all__ = ["EXTRA_HINT", "DistributedReport", "WorkerReport", "import_ray", "index"]
