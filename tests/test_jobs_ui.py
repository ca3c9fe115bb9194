"""The jobs page in a real browser: headless Debian Chromium (Playwright) starts an indexing job
on a new folder of synthetic photos into a new collection, with the admin token the server
asks for, watches the row go live (Server-Sent Events) until it says done with every image
counted and the failures grouped by reason, and finds the new collection on /collections.
Nothing is fetched from outside the server. Screenshots go to test-artifacts/screenshots/
(never committed)."""

from __future__ import annotations

import os
import random
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Page, expect

from search.settings import Settings
from tests.job_holds import job_held_until_cancel
from tests.live_server import chromium, serve_app
from tests.photos import PhotoSet, make_photo_set

pytestmark = pytest.mark.browser

TOKEN = "ui-admin-token"
LONG_JOB_IMAGES = 300
JOB_CEILING_MS = 600_000  # a loaded 2-core machine is slow, not wrong: wait for the event
SCREENSHOTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "screenshots"


def _plain_images(root: Path, count: int) -> Path:
    rng = random.Random(3)
    root.mkdir(parents=True)
    for i in range(count):
        Image.new("RGB", (32, 32), tuple(rng.randrange(256) for _ in range(3))).save(
            root / f"{i:04d}.png"
        )
    return root


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, PhotoSet]]:
    """The app with an admin token, allowed to index the folders under `allowed`, which
    nothing has indexed yet: `incoming` (24 good photos, one corrupt JPEG, one text file named
    like an image) and `many` (LONG_JOB_IMAGES small pictures, for a job to cancel)."""
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("PIXSEEK_"):
                mp.delenv(name)
        root = tmp_path_factory.mktemp("jobs-ui")
        mp.setenv("HF_HOME", str(root / "hf-home"))
        photos = make_photo_set(root / "allowed" / "incoming")
        _plain_images(root / "allowed" / "many", LONG_JOB_IMAGES)
        settings = Settings(
            data_dir=root / "data",
            model="tiny-test",
            workers=0,
            device="cpu",
            warm_on_start=False,
            batch_size=2,
            admin_token=TOKEN,
            allowed_roots=[photos.root.parent],
        )
        with serve_app(settings) as base_url:
            yield base_url, photos


@pytest.fixture
def tab(server: tuple[str, PhotoSet]) -> Iterator[tuple[Page, list[str]]]:
    """A fresh desktop-sized page and the URLs it requested; after the test, none may have
    left the server."""
    base_url, _ = server
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        context.set_default_timeout(60_000)
        requested: list[str] = []
        context.on("request", lambda request: requested.append(request.url))
        try:
            yield context.new_page(), requested
        finally:
            context.close()
    external = [url for url in requested if not url.startswith(base_url + "/")]
    assert not external, f"the page fetched from outside {base_url}: {external}"


def test_start_a_job_on_a_new_folder_and_watch_it_reach_done(
    tab: tuple[Page, list[str]], server: tuple[str, PhotoSet]
) -> None:
    page, requested = tab
    base_url, photos = server
    page.goto(f"{base_url}/jobs")
    expect(page.locator("#no-jobs")).to_be_visible()
    page.get_by_label("Folder on the server").fill(str(photos.root))
    page.get_by_label("Collection", exact=True).fill("holiday-photos")

    page.get_by_role("button", name="Start indexing").click()  # no token yet: refused
    expect(page.get_by_role("alert")).to_contain_text("admin token")
    assert page.locator("#jobs tbody tr").count() == 0

    page.get_by_label("Admin token").fill(TOKEN)
    page.get_by_role("button", name="Start indexing").click()
    row = page.locator("#jobs tbody tr").first
    expect(row).to_have_attribute("data-state", "done", timeout=JOB_CEILING_MS)
    expect(page.get_by_role("alert")).to_be_hidden()
    total = len(photos.good) + 2
    expect(row.locator(".state")).to_have_text("done")
    expect(row.locator(".collection")).to_have_text("holiday-photos")
    expect(row.locator(".count")).to_have_text(f"{total}/{total}")
    job_id = row.get_attribute("data-id")
    expect(row.get_by_role("progressbar", name=f"Job {job_id} progress")).to_be_visible()
    assert row.locator("progress").evaluate("bar => [bar.value, bar.max]") == [total, total]
    expect(row.locator(".failed-count")).to_have_text("2")
    reasons = row.locator(".reasons li")
    expect(reasons).to_have_count(2)
    assert sorted(reasons.all_inner_texts()) == [
        "not an image: 1",
        "truncated or corrupt image data: 1",
    ]
    expect(row.get_by_role("button")).to_have_count(0)  # done: nothing to cancel or resume
    assert any("/api/jobs/events" in url for url in requested), "no live event stream opened"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "jobs-desktop-light.png"), full_page=True)

    page.set_viewport_size({"width": 360, "height": 740})
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow} px wider than a 360 px screen"
    page.screenshot(path=str(SCREENSHOTS / "jobs-phone-light.png"), full_page=True)

    page.goto(f"{base_url}/collections")
    collection = page.locator("#collections tr[data-name='holiday-photos']")
    expect(collection.locator(".embedded")).to_have_text(str(len(photos.good)))
    expect(collection.locator(".failed")).to_have_text("2")


def test_cancel_a_running_job_and_resume_it_from_the_page(
    tab: tuple[Page, list[str]], server: tuple[str, PhotoSet]
) -> None:
    page, _ = tab
    base_url, photos = server
    page.goto(f"{base_url}/jobs")
    page.get_by_label("Folder on the server").fill(str(photos.root.parent / "many"))
    page.get_by_label("Collection", exact=True).fill("many")
    page.get_by_label("Admin token").fill(TOKEN)
    rows = page.locator("#jobs tbody tr")
    before = rows.count()
    with job_held_until_cancel():  # else an idle machine may finish the job before the click
        page.get_by_role("button", name="Start indexing").click()
        expect(rows).to_have_count(before + 1)
        row = rows.first
        job_id = row.get_attribute("data-id")
        expect(row.locator(".count")).to_have_text(
            re.compile(rf"^[1-9][0-9]*/{LONG_JOB_IMAGES}$"), timeout=JOB_CEILING_MS
        )  # running, with a measured rate: the live updates arrive
        expect(row.locator(".rate")).not_to_have_text("")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "jobs-running-desktop-light.png"), full_page=True)
        row.get_by_role("button", name=f"Cancel job {job_id}").click()
        cancelled = page.locator(f"#jobs tbody tr[data-id='{job_id}']")
        expect(cancelled).to_have_attribute("data-state", "cancelled", timeout=JOB_CEILING_MS)
    done_before = int(cancelled.locator(".count").inner_text().split("/")[0])
    assert 0 < done_before < LONG_JOB_IMAGES

    cancelled.get_by_role("button", name=f"Resume job {job_id}").click()
    expect(rows).to_have_count(before + 2)
    resumed = rows.first
    expect(resumed.locator(".resumes")).to_have_text(f"resumes #{job_id}")
    expect(resumed).to_have_attribute("data-state", "done", timeout=JOB_CEILING_MS)
    left = LONG_JOB_IMAGES - done_before
    expect(resumed.locator(".count")).to_have_text(f"{left}/{left}")
    expect(page.get_by_role("alert")).to_be_hidden()
