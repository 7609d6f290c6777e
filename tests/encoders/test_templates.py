"""Item text templates: rendering, empty slots, unknown slots, readable KG facts."""

from __future__ import annotations

import pandas as pd
import pytest

from fusionrec.data import Dataset
from fusionrec.encoders.templates import kg_facts, render_item_texts, render_template
from fusionrec.errors import ConfigError


@pytest.fixture
def movies() -> Dataset:
    inter = pd.DataFrame({"user_id": ["u1", "u1", "u2"], "item_id": ["1", "2", "3"]})
    items = pd.DataFrame(
        {
            "item_id": ["1", "2", "3"],
            "movie_title": ["Toy Story", "Heat", "Alien"],
            "release_year": ["1995", None, "1979"],
            "class": [["Animation", "Comedy"], ["Crime"], []],
            "plot": ["toys come alive", None, "a creature on a ship"],
        }
    )
    kg = pd.DataFrame(
        {
            "head_id": ["m.01", "m.01", "m.03"],
            "relation_id": [
                "film.film.award_won",
                "film.film.directed_by",
                "film.film.directed_by",
            ],
            "tail_id": ["m.0xyz", "John Lasseter", "Ridley Scott"],
        }
    )
    link = pd.DataFrame({"item_id": ["1", "3"], "entity_id": ["m.01", "m.03"]})
    return Dataset.from_frames(
        inter,
        items=items,
        kg_triples=kg,
        kg_link=link,
        text_fields=("movie_title", "class", "plot"),
    )


def test_default_template_renders_fields_and_drops_empty_ones(movies):
    texts = render_item_texts(movies)
    assert texts[0] == "Toy Story (1995). Genres: Animation, Comedy. toys come alive"
    assert texts[1] == "Heat. Genres: Crime"  # no year: no "()", no plot
    assert texts[2] == "Alien (1979). a creature on a ship"  # empty genre list: label dropped


def test_custom_template_and_columns(movies):
    assert render_item_texts(movies, "{movie_title} / {release_year}") == [
        "Toy Story / 1995",
        "Heat /",
        "Alien / 1979",
    ]


def test_unknown_slot_is_a_clear_error(movies):
    with pytest.raises(ConfigError, match="unknown slot.*director"):
        render_item_texts(movies, "{title} by {director}")


def test_kg_facts_keep_readable_tails_and_bare_relations_for_mids(movies):
    facts = kg_facts(movies)
    assert facts[0] == "award won, directed by: John Lasseter"  # the mid tail is not shown
    assert facts[1] == ""
    assert facts[2] == "directed by: Ridley Scott"
    assert (
        render_item_texts(movies, "{title}. {kg}")[2] == "Alien. Facts: directed by: Ridley Scott"
    )


def test_render_template_blank_cleanup():
    assert render_template("{title} ({year}). Genres: {genres}.", {"title": "X"}) == "X"
    assert render_template("{a}; {b}", {"a": "", "b": "y"}) == "y"
