"""Query arithmetic: a query is a weighted sum of terms (texts, catalog images, example images).

Grammar of a text query (`q`), the one rclip users know, made strict where intent is clear:

    query  := term (sep term)*          sep := " + " | " - "   (blanks on both sides)
    term   := [weight ":"] body         weight := a number (2, 0.5, -1, 1e-1)
    body   := "id:" digits | text | '"' text '"'

- A `W:` prefix is a weight only when W parses as a number: `a clock at 10:30` stays text, and
  `2:sunset` is sunset weighted 2. `id:N` names a catalog image; `id:` followed by anything but
  a positive 64-bit integer is an error naming the term (the user meant an id).
- Double quotes keep a literal ` + `, ` - ` or `2:` inside a term (`"rock - paper"`), and are
  dropped from the text searched.
- An empty term (`red + `), or a query whose weights are all negative, is an error naming it.

A query with one plain text term of weight 1 is an ordinary text query: the engine encodes it
as before (and full-text and hybrid modes, which need plain text, accept only such queries).
The vector searched is the weighted sum of the L2-normalised term vectors, normalised again.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from search.errors import InputError
from search.schemas import MAX_TERMS, QueryTerm

__all__ = ["MAX_ID", "QueryImage", "combine", "parse_query", "plain_text"]

MAX_ID = 2**63 - 1
_SEPARATOR = re.compile(r"\s+([+-])(?:\s+|$)")
_LEADING_SIGN = re.compile(r"^([+-])\s+")
_WEIGHT = re.compile(r"^([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?):(.*)$", re.DOTALL)
_ID = re.compile(r"^id:(.*)$", re.DOTALL | re.IGNORECASE)


class QueryImage(NamedTuple):
    """An example image given as bytes (an upload, a file from the CLI): one more term."""

    data: bytes
    source: str  # names it in error messages: "upload 'a.jpg'", "/tmp/a.jpg"
    weight: float = 1.0


def _split(query: str) -> list[tuple[int, str]]:
    """(sign, raw term) pairs: the query cut at ` + ` / ` - ` outside double quotes."""
    pieces: list[tuple[int, str]] = []
    sign, start, position, quoted = 1, 0, 0, False
    leading = _LEADING_SIGN.match(query)
    if leading:  # "- people": a sign before the first term
        sign = 1 if leading.group(1) == "+" else -1
        start = position = leading.end()
    while position < len(query):
        char = query[position]
        if char == '"':
            quoted = not quoted
        elif not quoted and char.isspace():
            match = _SEPARATOR.match(query, position)
            if match:
                pieces.append((sign, query[start:position]))
                sign = 1 if match.group(1) == "+" else -1
                start = position = match.end()
                continue
        position += 1
    if quoted:
        raise InputError(f"The query {query!r} has an unclosed double quote.")
    pieces.append((sign, query[start:]))
    return pieces


def _term(sign: int, raw: str, query: str) -> QueryTerm:
    body = raw.strip()
    if not body or _LEADING_SIGN.match(body):  # "red -  + blue": a sign with nothing before it
        raise InputError(
            f"The query {query!r} has an empty term beside a + or -: remove it, or quote "
            'the text ("rock - paper") to search for it literally.'
        )
    weight = 1.0
    match = _WEIGHT.match(body)
    if match and not body.startswith('"'):
        weight = float(match.group(1))
        if not math.isfinite(weight) or weight == 0 or abs(weight) > 1e6:
            raise InputError(
                f"The weight of term {body!r} must be a non-zero number up to 1e6 in size."
            )
        body = match.group(2).strip()
        if not body:
            raise InputError(f"The term {raw.strip()!r} has a weight but nothing to search for.")
    weight *= sign
    if body.startswith('"') and body.endswith('"') and len(body) >= 2:
        text = body[1:-1].strip()
        if not text:
            raise InputError(f"The quoted term {body!r} is empty.")
        return QueryTerm(text=text, weight=weight)
    id_match = _ID.match(body)
    if id_match:
        digits = id_match.group(1).strip()
        if not digits.isdigit() or not 1 <= int(digits) <= MAX_ID:
            raise InputError(
                f"The term {body!r} is not an image id: write id:N with N a catalog image id "
                f'(a positive whole number), or quote it ("{body}") to search for the text.'
            )
        return QueryTerm(image_id=int(digits), weight=weight)
    return QueryTerm(text=body.replace('"', "").strip() or body, weight=weight)


def parse_query(query: str, other_weights: Sequence[float] = ()) -> list[QueryTerm]:
    """The terms of a text query (see the module docstring for the grammar); `other_weights`
    are those of the terms given beside it (example images), which count for the checks."""
    terms = [_term(sign, raw, query) for sign, raw in _split(query)]
    check_terms(terms, other_weights)
    return terms


def check_terms(terms: Sequence[QueryTerm], extra_weights: Sequence[float] = ()) -> None:
    """Refuse what cannot mean anything: too many terms, or no positive term at all."""
    if len(terms) + len(extra_weights) > MAX_TERMS:
        raise InputError(
            f"The query has {len(terms) + len(extra_weights)} terms; the limit is {MAX_TERMS}."
        )
    weights = [t.weight for t in terms] + list(extra_weights)
    if weights and max(weights) <= 0:
        raise InputError(
            "The query has only negative terms: say what to look for first (e.g. 'beach - "
            "people'), then what to take away."
        )


def plain_text(terms: Sequence[QueryTerm]) -> str | None:
    """The text of a query that is just one text of weight 1 (an ordinary query), else None."""
    if len(terms) == 1 and terms[0].text is not None and terms[0].weight == 1.0:
        return terms[0].text
    return None


def combine(vectors: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """The weighted sum of the L2-normalised vectors, normalised again, shape (1, d).

    A sum that cancels out (`cat - cat`) has no direction to search in: an error."""
    total = np.zeros_like(np.asarray(vectors[0], dtype=np.float32).reshape(-1))
    for vector, weight in zip(vectors, weights, strict=True):
        flat = np.asarray(vector, dtype=np.float32).reshape(-1)
        norm = float(np.linalg.norm(flat))
        if norm > 0:
            total += weight * flat / norm
    norm = float(np.linalg.norm(total))
    if norm < 1e-6:
        raise InputError("The query's terms cancel each other out: nothing is left to search for.")
    return (total / norm)[None, :].astype(np.float32)
