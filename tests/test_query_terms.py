"""Query arithmetic: the grammar of `q` (strict where intent is clear, literal elsewhere) and
the vector arithmetic it stands for."""

from __future__ import annotations

import numpy as np
import pytest

from search.errors import InputError
from search.query.terms import combine, parse_query, plain_text


def _shape(query: str) -> list[tuple[str | int | None, float]]:
    return [(t.text if t.text is not None else t.image_id, t.weight) for t in parse_query(query)]


@pytest.mark.parametrize(
    ("query", "terms"),
    [
        ("beach", [("beach", 1.0)]),
        ("beach + 2:sunset - people", [("beach", 1.0), ("sunset", 2.0), ("people", -1.0)]),
        ("id:42 - snow", [(42, 1.0), ("snow", -1.0)]),
        ("0.5:cat + dog", [("cat", 0.5), ("dog", 1.0)]),
        ("-1.5:cat + dog", [("cat", -1.5), ("dog", 1.0)]),
        ("1e1:cat", [("cat", 10.0)]),
        ("+ cat", [("cat", 1.0)]),
        # not numbers before the colon: plain text
        ("a clock at 10:30", [("a clock at 10:30", 1.0)]),
        ("note: buy milk", [("note: buy milk", 1.0)]),
        ("http://example", [("http://example", 1.0)]),
        # no blanks around the sign: part of a word
        ("t-shirt - red", [("t-shirt", 1.0), ("red", -1.0)]),
        ("c++ + code", [("c++", 1.0), ("code", 1.0)]),
        # quotes keep separators and weights literal
        ('"rock - paper"', [("rock - paper", 1.0)]),
        ('"2:sunset"', [("2:sunset", 1.0)]),
        ('2:"rock + roll" - drums', [("rock + roll", 2.0), ("drums", -1.0)]),
        ('"id:7"', [("id:7", 1.0)]),
        ("ID:7", [(7, 1.0)]),
    ],
)
def test_grammar(query: str, terms: list[tuple[str | int | None, float]]) -> None:
    assert _shape(query) == terms


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("red +", "empty term"),
        ("red + ", "empty term"),
        ("red -  + blue", "empty term"),
        ("id:abc", "'id:abc' is not an image id"),
        ("id:", "'id:' is not an image id"),
        ("id:-3", "'id:-3' is not an image id"),
        ("id:99999999999999999999", "is not an image id"),
        ("- people", "only negative terms"),
        ("-2:people - snow", "only negative terms"),
        ('"unclosed', "unclosed double quote"),
        ('""', "quoted term '\"\"' is empty"),
        ("2:", "has a weight but nothing"),
        ("0:cat", "non-zero"),
        ("1e9:cat", "up to 1e6"),
        (" + ".join(["a"] * 17), "the limit is 16"),
    ],
)
def test_errors_name_the_term(query: str, names: str) -> None:
    with pytest.raises(InputError, match=None) as caught:
        parse_query(query)
    assert names in str(caught.value)


def test_plain_text_is_only_a_single_unweighted_text() -> None:
    assert plain_text(parse_query("a red circle")) == "a red circle"
    assert plain_text(parse_query("2:a red circle")) is None
    assert plain_text(parse_query("red + blue")) is None
    assert plain_text(parse_query("id:3")) is None


def test_combine_is_the_normalised_weighted_sum_of_normalised_vectors() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=8).astype(np.float32), rng.normal(size=8).astype(np.float32)
    got = combine([a * 3, b[None, :]], [2.0, -1.0])
    expected = 2 * a / np.linalg.norm(a) - b / np.linalg.norm(b)
    expected /= np.linalg.norm(expected)
    assert got.shape == (1, 8)
    np.testing.assert_allclose(got[0], expected, atol=1e-6)


def test_terms_that_cancel_out_are_an_error() -> None:
    vector = np.ones(4, dtype=np.float32)
    with pytest.raises(InputError, match="cancel each other out"):
        combine([vector, vector], [1.0, -1.0])
