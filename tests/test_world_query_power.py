"""Query power where meaning matters: the tiny CLIP trained on the synthetic world, whose
captions say exactly what each image shows. Query arithmetic must move a query along the
attribute it adds and subtracts, measured over every shape and colour pair, not one example."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import permutations
from pathlib import Path

import pytest

from indexer.quality.synthetic_world import SHAPES, load_world
from search.catalog import Catalog, open_catalog
from search.query.engine import SearchEngine
from search.settings import Settings
from tests.conftest import Cli

pytestmark = pytest.mark.slow

COLOURS = ("red", "green", "blue", "yellow", "purple", "orange")


@pytest.fixture(scope="module")
def world_search(
    trained_world: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[SearchEngine, dict[str, dict[str, str | int]]]]:
    """An engine over the world's held-out split, and each indexed path's attributes."""
    world_dir, model_dir = trained_world
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("world-power") / "data",
        model=f"local-dir:{model_dir}",
        workers=0,
        device="cpu",
        tags=False,
    )
    Cli(settings).json("index", str(world_dir / "test"))
    world = load_world(world_dir)
    attributes = {str(world_dir / item.file_name): item.attributes for item in world.test}
    catalog: Catalog = open_catalog(settings.resolved_database_url())
    try:
        yield SearchEngine(settings, catalog), attributes
    finally:
        catalog.close()


def _mean_ranks(
    engine: SearchEngine, attributes: dict[str, dict[str, str | int]], query: str, shape: str
) -> dict[str, float]:
    """The mean rank, over the whole ranking of the held-out split, of the images of `shape`
    in each colour (a whole-ranking measure: the top 10 of 400 images holds too few of one
    shape and colour to compare)."""
    ranks: dict[str, list[int]] = {}
    for rank, result in enumerate(engine.search_text(query, k=len(attributes)).results):
        seen = attributes[result.path]
        if seen["shape"] == shape:
            ranks.setdefault(str(seen["colour"]), []).append(rank)
    return {colour: sum(found) / len(found) for colour, found in ranks.items()}


def _moved(ranks: dict[str, float], source: str, target: str) -> bool | None:
    """Whether images in `target` colour rank above those in `source` (None: one is missing)."""
    if source not in ranks or target not in ranks:
        return None
    return ranks[target] < ranks[source]


def test_subtracting_one_colour_and_adding_another_moves_the_results(
    world_search: tuple[SearchEngine, dict[str, dict[str, str | int]]],
) -> None:
    """`a C1 S - C1 + C2` ranks C2-coloured S above C1-coloured S, for every shape and ordered
    colour pair, where the plain `a C1 S` ranks C1 first (so the arithmetic did the moving)."""
    engine, attributes = world_search
    moved, plain_moved, trials = 0, 0, 0
    for shape in SHAPES:
        for source, target in permutations(COLOURS, 2):
            swapped = _moved(
                _mean_ranks(engine, attributes, f"a {source} {shape} - {source} + {target}", shape),
                source,
                target,
            )
            plain = _moved(
                _mean_ranks(engine, attributes, f"a {source} {shape}", shape), source, target
            )
            if swapped is None or plain is None:
                continue
            trials += 1
            moved += swapped
            plain_moved += plain
    assert trials >= 150, trials
    assert moved / trials >= 0.9, f"{moved}/{trials} colour swaps moved the results"
    assert plain_moved / trials <= 0.1, f"{plain_moved}/{trials} without arithmetic"


def test_an_image_id_minus_its_colour_plus_another_finds_that_colour(
    world_search: tuple[SearchEngine, dict[str, dict[str, str | int]]],
) -> None:
    """`id:N - C1 + C2` from a C1 image of shape S ranks C2-coloured S above C1-coloured S."""
    engine, attributes = world_search
    records = engine.catalog.get_images(engine.catalog.embedded_ids(1))
    moved = trials = 0
    for record in list(records.values())[:: max(1, len(records) // 60)]:
        seen = attributes[record.display_path]
        source = str(seen["colour"])
        if source not in COLOURS:
            continue
        target = COLOURS[(COLOURS.index(source) + 2) % len(COLOURS)]
        query = f"id:{record.id} - {source} + {target}"
        swapped = _moved(_mean_ranks(engine, attributes, query, str(seen["shape"])), source, target)
        if swapped is None:
            continue
        trials += 1
        moved += swapped
    assert trials >= 30, trials
    assert moved / trials >= 0.8, f"{moved}/{trials} image-and-text queries moved the colour"
