"""A search on an empty collection warns once, naming the collections that the database does have."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from shortlist import Encoder, Prefilter
from shortlist.errors import EmptyCollectionWarning
from shortlist.langchain import ShortlistVectorStore


def test_a_mistyped_collection_warns_once_with_the_real_names(tmp_path: Path, encoder: Encoder) -> None:
    Prefilter("notes", path=tmp_path, encoder=encoder).add_documents(["Cats sleep a lot.", "Dogs bark."])
    Prefilter("recipes", path=tmp_path, encoder=encoder).add_documents(["Bake the bread for forty minutes."])
    Prefilter("blank", path=tmp_path, encoder=encoder)  # exists but holds nothing: not offered
    typo = Prefilter("nots", path=tmp_path, encoder=encoder)
    with pytest.warns(EmptyCollectionWarning) as caught:
        assert len(typo.search("cats", mode="dense")) == 0
    [warning] = [w for w in caught if w.category is EmptyCollectionWarning]
    text = str(warning.message)
    assert "Collection 'nots'" in text and str(tmp_path) in text and "is empty" in text
    assert "'notes' (2 chunks), 'recipes' (1 chunks)" in text and "Did you mean 'notes'?" in text
    assert "'blank'" not in text
    assert warning.filename == __file__  # points at the caller's line, not inside shortlist
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per pre-filter: a second search is silent
        assert len(typo.search("dogs")) == 0


def test_no_warning_on_a_filled_collection_and_a_plain_one_in_memory(encoder: Encoder) -> None:
    pf = Prefilter.in_memory("filled", encoder=encoder)
    pf.add_documents(["Cats sleep a lot."])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(pf.search("cats", k=1)) == 1
    store = ShortlistVectorStore(in_memory=True, collection_name="lonely")
    with pytest.warns(EmptyCollectionWarning, match="'lonely' is empty.*no other collection with chunks"):
        assert store.similarity_search("anything") == []
