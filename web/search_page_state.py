"""The search page's state, all of it in the URL: reading it from a query string or a form
(blank fields are "not given"), the request the page actually runs (the page's defaults:
`cutoff=auto` unless the URL asks for a number of results or a score), and every link the page
draws from it (a chip without its filter, a facet that adds one, "more like this", the next
page), so a search can be bookmarked, shared and walked back to."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any, get_origin
from urllib.parse import urlencode

from search.schemas import MAX_K, FacetsResponse, SearchOptions

__all__ = [
    "PAGE_ONLY_FIELDS",
    "Chip",
    "FacetLink",
    "PageState",
    "read_options",
]

PAGE_ONLY_FIELDS = ("scores",)
"""URL parameters of the page alone (the score overlay), not search options."""

_REPEATABLE = frozenset(
    name
    for name, field in SearchOptions.model_fields.items()
    if get_origin(field.annotation) is list
)
_FIELD_ORDER = [
    "query" if name == "query" else name for name in SearchOptions.model_fields if name != "cursor"
]


def read_options(pairs: Iterable[tuple[str, Any]]) -> tuple[dict[str, Any], bool]:
    """The search options of a query string or a form as a dict ready for `SearchOptions`
    (blank values dropped, repeatable fields as lists, files left out), and whether the score
    overlay is on."""
    values: dict[str, Any] = {}
    scores = False
    for name, value in pairs:
        if not isinstance(value, str) or not value.strip():
            continue
        if name == "scores":
            scores = value not in ("0", "false")
        elif name in _REPEATABLE:
            values.setdefault(name, []).append(value)
        else:
            values[name] = value
    return values, scores


def _url_value(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list):
        return [_url_value(v) for v in value]
    return value


@dataclass(frozen=True)
class Chip:
    """An active filter: what it says, and the link to the same search without it."""

    name: str
    label: str
    remove_url: str


@dataclass(frozen=True)
class FacetLink:
    """A value of a facet (with its count) as a link that adds it as a filter."""

    label: str
    count: int
    url: str


@dataclass(frozen=True)
class PageState:
    """The options of the URL (as given) and the page's defaults on top of them."""

    options: SearchOptions
    scores: bool
    default_k: int

    # --- what is searched ---------------------------------------------------------------

    @property
    def auto_cutoff(self) -> bool:
        """The page's default: only the strong matches, unless the URL names a number of
        results (k) or a score (min_score) or a cutoff of its own."""
        o = self.options
        return o.k is None and o.min_score is None and o.cutoff is None

    def effective(self, cursor: str | None = None) -> SearchOptions:
        """The options the page searches with: the URL's plus the page's defaults (cutoff,
        and pages of at most `default_k` results), with `cursor` when given."""
        values = {name: getattr(self.options, name) for name in self.options.model_fields_set}
        values.pop("cursor", None)
        if self.auto_cutoff:
            values["cutoff"] = "auto"
        if self.options.limit is None and (self.options.k or 0) > self.default_k:
            values["limit"] = self.default_k
        if cursor:
            values["cursor"] = cursor
        return SearchOptions.model_validate(values)

    # --- links --------------------------------------------------------------------------

    def params(self, **changes: Any) -> dict[str, Any]:
        """The URL parameters of this search (never the cursor), with `changes` (None or []
        drops one)."""
        given = {n: getattr(self.options, n) for n in self.options.model_fields_set}
        given.pop("cursor", None)
        if self.scores:
            given["scores"] = "1"
        given.update(changes)
        ordered = [n for n in _FIELD_ORDER if n in given] + [
            n for n in given if n not in _FIELD_ORDER
        ]
        out: dict[str, Any] = {}
        for name in ordered:
            value = given[name]
            if value in (None, [], ""):
                continue
            out["q" if name == "query" else name] = _url_value(value)
        return out

    def url(self, **changes: Any) -> str:
        query = urlencode(self.params(**changes), doseq=True)
        return f"/?{query}" if query else "/"

    def api_url(self, cursor: str) -> str:
        """The JSON twin of the next page (`GET /api/search`)."""
        effective = self.effective(cursor)
        values = {n: getattr(effective, n) for n in effective.model_fields_set}
        values = {("q" if n == "query" else n): _url_value(v) for n, v in values.items()}
        return "/api/search?" + urlencode(values, doseq=True)

    def next_page_url(self, cursor: str) -> str:
        query = urlencode({**self.params(), "cursor": cursor}, doseq=True)
        return f"/?{query}"

    def weaker_url(self) -> str:
        """The same search without the cutoff: the best `MAX_K`, in pages."""
        return self.url(k=MAX_K, cutoff=None, min_score=None)

    def strong_url(self) -> str:
        """Back to the page's default: only the strong matches."""
        return self.url(k=None, cutoff=None, min_score=None)

    def arithmetic_url(self, image_id: int, sign: str) -> str:
        """This query with ` + id:N` or ` - id:N` added (a vector search: arithmetic is not
        plain text, which text and hybrid modes and rerank need)."""
        query = self.options.query
        if query is None and self.options.image_id is not None:
            query = f"id:{self.options.image_id}"
        term = f"id:{image_id}"
        new_query = f"{query} {sign} {term}" if query else (term if sign == "+" else f"- {term}")
        return self.url(query=new_query, image_id=None, mode=None, rerank=None)

    # --- chips and facets -----------------------------------------------------------------

    def chips(self) -> list[Chip]:
        """The active filters, each with the link that removes it."""
        o = self.options
        chips = []
        if o.collection:
            chips.append(
                Chip("collection", f"collection: {o.collection}", self.url(collection=None))
            )
        if o.folder:
            chips.append(Chip("folder", f"folder: {o.folder}", self.url(folder=None)))
        if o.date_from or o.date_to:
            span = f"{o.date_from or '…'} to {o.date_to or '…'}"
            chips.append(Chip("date", f"taken: {span}", self.url(date_from=None, date_to=None)))
        if o.camera:
            chips.append(Chip("camera", f"camera: {o.camera}", self.url(camera=None)))
        for tag in o.tag:
            rest = [t for t in o.tag if t != tag]
            chips.append(Chip("tag", f"tag: {tag}", self.url(tag=rest)))
        for name in ("orientation", "has_caption", "min_score"):
            value = getattr(o, name)
            if value is not None:
                chips.append(
                    Chip(name, f"{name.replace('_', ' ')}: {value}", self.url(**{name: None}))
                )
        for name in ("any_tag", "file_type"):
            for value in getattr(o, name):
                rest = [v for v in getattr(o, name) if v != value]
                chips.append(
                    Chip(name, f"{name.replace('_', ' ')}: {value}", self.url(**{name: rest}))
                )
        return chips

    def clear_filters_url(self) -> str:
        o = self.options
        keep = {"query": o.query, "image_id": o.image_id, "mode": o.mode, "sort": o.sort}
        keep |= {"k": o.k, "rerank": o.rerank or None, "limit": o.limit}
        return PageState(SearchOptions(), self.scores, self.default_k).url(**keep)

    def facet_links(self, facets: FacetsResponse) -> dict[str, list[FacetLink]]:
        """Facet values that would narrow this search, as links that add them."""
        o = self.options
        links: dict[str, list[FacetLink]] = {
            "collections": [],
            "years": [],
            "cameras": [],
            "tags": [],
        }
        if not o.collection and len(facets.collections) > 1:
            links["collections"] = [
                FacetLink(f.value, f.count, self.url(collection=f.value))
                for f in facets.collections
            ]
        if not (o.date_from or o.date_to):
            links["years"] = [
                FacetLink(
                    f.value,
                    f.count,
                    self.url(date_from=f"{f.value}-01-01", date_to=f"{f.value}-12-31"),
                )
                for f in facets.years
                if f.value.isdigit()
            ]
        if not o.camera:
            links["cameras"] = [
                FacetLink(f.value, f.count, self.url(camera=f.value)) for f in facets.cameras
            ]
        links["tags"] = [
            FacetLink(f.value, f.count, self.url(tag=[*o.tag, f.value]))
            for f in facets.tags
            if f.value not in o.tag
        ][:20]
        return links
