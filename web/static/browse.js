// The collection page's infinite scroll. Without JavaScript, "Next page" is a plain link to the
// next page of the listing. With it, when that link scrolls into view, the next page is fetched
// from GET /api/browse (its URL is the link's data-api, carrying the API's cursor), its images
// are appended to the grid (an id already shown is skipped, so a page can never repeat one),
// and the link moves on to the page after, until the API answers next_cursor = null.
(function () {
  "use strict";
  const grid = document.getElementById("results");
  const link = document.getElementById("next-page");
  const errorBox = document.getElementById("error");
  const shown = document.getElementById("shown-count");
  if (!grid || !link || !("IntersectionObserver" in window)) return;

  const seen = new Set([...grid.querySelectorAll("li.result")].map((li) => li.dataset.id));
  let loading = false;
  let stopped = false;  // after an error: no retry loop, the plain link is still there

  function card(result) {
    const name = result.path.split("/").pop();
    const li = document.createElement("li");
    li.className = "result";
    li.dataset.id = String(result.id);
    const anchor = document.createElement("a");
    anchor.href = "/images/" + result.id;
    anchor.title = result.path;
    const img = document.createElement("img");
    img.src = result.thumbnail_url;
    img.alt = result.caption || name;
    img.loading = "lazy";
    if (result.width && result.height) {
      img.width = result.width;
      img.height = result.height;
    }
    anchor.append(img);
    const meta = document.createElement("div");
    meta.className = "meta";
    const file = document.createElement("a");
    file.className = "file";
    file.href = result.file_url;
    file.textContent = name;
    meta.append(file);
    if (result.taken_at) {
      const time = document.createElement("time");
      time.dateTime = result.taken_at;
      time.textContent = result.taken_at.slice(0, 10);
      meta.append(time);
    }
    li.append(anchor, meta);
    return li;
  }

  function nextPageUrl(cursor) {
    const page = new URL(link.href, location.href);
    page.searchParams.set("cursor", cursor);
    const api = new URL(link.dataset.api, location.href);
    api.searchParams.set("cursor", cursor);
    return [page.pathname + page.search, api.pathname + api.search];
  }

  async function loadMore() {
    if (loading || stopped || !link.isConnected) return;
    loading = true;
    link.setAttribute("aria-busy", "true");
    try {
      const response = await fetch(link.dataset.api, { headers: { Accept: "application/json" } });
      const data = await response.json().catch(() => ({}));
      if (!response.ok) {
        throw new Error((data.error && data.error.message) || response.statusText);
      }
      const fresh = data.results.filter((r) => !seen.has(String(r.id)));
      fresh.forEach((r) => seen.add(String(r.id)));
      grid.append(...fresh.map(card));
      if (shown) shown.textContent = String(seen.size);
      if (data.next_cursor) {
        const [page, api] = nextPageUrl(data.next_cursor);
        link.href = page;
        link.dataset.api = api;
      } else {
        observer.disconnect();
        link.parentElement.remove();
      }
    } catch (error) {
      stopped = true;
      observer.disconnect();  // the plain link still works; say why scrolling stopped
      errorBox.textContent = "Could not load more images: " + error.message;
      errorBox.hidden = false;
    } finally {
      loading = false;
      link.removeAttribute("aria-busy");
    }
    // Observing again reports whether the link is still in view (a tall screen, a short
    // page): if so, the next page loads at once, without waiting for a scroll.
    if (!stopped && link.isConnected) {
      observer.unobserve(link);
      observer.observe(link);
    }
  }

  const observer = new IntersectionObserver((entries) => {
    if (entries.some((entry) => entry.isIntersecting)) loadMore();
  }, { rootMargin: "400px 0px" });
  observer.observe(link);
})();
