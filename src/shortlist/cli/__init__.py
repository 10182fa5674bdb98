"""The ``shortlist`` command (also ``python -m shortlist``).

Commands: ``index`` (files and folders into a Chroma collection), ``query`` (a question's shortlist), ``eval`` (a
BEIR-style dataset's retrieval figures), ``similarity`` (two texts' cosine similarity), ``info`` (model, backend,
collections), ``demo`` (the pre-filter over Python's own documentation), ``serve`` (the HTTP service) and
``export`` (the ONNX files of the onnx backends, ahead of first use).

Every command loads its heavy dependencies (torch, Chroma) only when it runs, so ``shortlist --help`` is instant.
Errors raised by shortlist (:class:`~shortlist.errors.ShortlistError`) become one line on stderr and exit code 1;
usage mistakes exit with code 2.

The package, one module per command or area:

- :mod:`~shortlist.cli.group`: the ``shortlist`` group, its error handling and :func:`main`;
- :mod:`~shortlist.cli.options`: the shared options, each declared once (:func:`~shortlist.cli.options.encoder_options`,
  :func:`~shortlist.cli.options.store_options`, ``--db``, ``--collection``, ``--json``...);
- :mod:`~shortlist.cli.database`: the collections of a database and a pre-filter over one;
- :mod:`~shortlist.cli.render`: what the commands print (tables, summaries, JSON);
- the commands: :mod:`~shortlist.cli.index`, :mod:`~shortlist.cli.query`, :mod:`~shortlist.cli.evaluate`
  (``eval``), :mod:`~shortlist.cli.model` (``similarity``, ``info``, ``export``), :mod:`~shortlist.cli.demo`,
  :mod:`~shortlist.cli.serve`.

Add a command in a module of its own with ``@cli.command()`` and the shared option decorators, and import the module
below.
"""

from __future__ import annotations

from shortlist.cli import demo, evaluate, index, model, query, serve  # noqa: F401  (each registers its commands)
from shortlist.cli.group import cli, main
from shortlist.cli.render import format_shortlist, shortlist_dict, stats_line

__all__ = ["cli", "format_shortlist", "main", "shortlist_dict", "stats_line"]
