"""The routes of ``shortlist serve``, one module per area, each an :class:`fastapi.APIRouter` named ``router``.

- :mod:`~shortlist.server.routes.embeddings`: the Ollama and OpenAI embedding APIs and their model listings;
- :mod:`~shortlist.server.routes.similarity`: two texts, many pairs, a CSV file of pairs;
- :mod:`~shortlist.server.routes.search`: the shortlist of a collection's chunks;
- :mod:`~shortlist.server.routes.pages`: the web page and ``/health``.
"""

from __future__ import annotations

from shortlist.server.routes import embeddings, pages, search, similarity

#: The routers in the order their paths are listed in the OpenAPI document.
ROUTERS = (embeddings.router, similarity.router, search.router, pages.router)

__all__ = ["ROUTERS"]
