"""Near-duplicates: `pixseek dupes` groups copies and re-encodes of the same picture, and
`dedupe=true` collapses them in search results."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from PIL import Image

from search.settings import Settings
from tests.conftest import Cli
from tests.photos import PhotoSet
from web.app import create_app


def _add_near_duplicates(photos: PhotoSet) -> list[Path]:
    original = photos.good[4]
    image = Image.open(original).convert("RGB")
    copies = [photos.root / "dup_resized.png", photos.root / "dup_quality.jpg"]
    image.resize((image.width // 2, image.height // 2)).save(copies[0])
    image.save(copies[1], quality=40)
    return [original, *copies]


def test_dupes_groups_resized_and_recompressed_copies(cli: Cli, photos: PhotoSet) -> None:
    group = _add_near_duplicates(photos)
    cli.json("index", str(photos.root))
    result = cli.json("dupes", "--threshold", "0.999")
    groups = [set(g["paths"]) for g in result["groups"]]
    # (the random-weight test encoder also finds some unrelated look-alikes; never all images)
    assert any({str(p) for p in group} <= g for g in groups), result
    assert sum(len(g) for g in groups) < len(photos.good) // 2
    for g in result["groups"]:
        assert g["similarity"] >= 0.999 and len(g["ids"]) == len(g["paths"]) >= 2
    text = cli("dupes", "--threshold", "0.999").stdout
    assert "Group 1" in text


def test_search_dedupe_collapses_copies(tmp_path: Path, photos: PhotoSet) -> None:
    group = _add_near_duplicates(photos)
    settings = Settings(data_dir=tmp_path / "d", model="tiny-test", workers=0, device="cpu")
    cli = Cli(settings)
    cli.json("index", str(photos.root))
    plain = cli.json("search", "--image", str(group[0]), "--k", "3")["results"]
    assert {r["path"] for r in plain} == {str(p) for p in group}
    collapsed = cli.json("search", "--image", str(group[0]), "--k", "3", "--dedupe")["results"]
    assert collapsed[0]["path"] == str(group[0]) and len(collapsed) == 3
    assert not {r["path"] for r in collapsed[1:]} & {str(p) for p in group}
    with TestClient(create_app(settings)) as client:
        api = client.get("/api/duplicates", params={"threshold": 0.999}).json()
        assert any({str(p) for p in group} <= set(g["paths"]) for g in api["groups"])
        deduped = client.get(
            "/api/search", params={"q": "a picture", "k": 40, "dedupe": "true"}
        ).json()
        paths = [r["path"] for r in deduped["results"]]
        assert sum(p in paths for p in map(str, group)) <= 1, "copies collapse into one hit"
