// The collection page's infinite scroll, the same as the search page's. Without JavaScript,
// "Next page" is a plain link to the next page of the listing. With it, when that link scrolls
// into view, that page is fetched and its cards (rendered by the one grid partial, so they are
// the cards already shown) are appended to the grid, an id already shown being skipped so a
// page can never repeat one, and the link moves on to the page after, until the last page.
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

  async function loadMore() {
    if (loading || stopped || !link.isConnected) return;
    loading = true;
    link.setAttribute("aria-busy", "true");
    try {
      const response = await fetch(link.href, { headers: { Accept: "text/html" } });
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      if (!response.ok) {
        const problem = page.getElementById("error");
        throw new Error((problem && problem.textContent.trim()) || response.statusText);
      }
      const fresh = [...page.querySelectorAll("#results li.result")]
        .filter((li) => !seen.has(li.dataset.id));
      fresh.forEach((li) => {
        seen.add(li.dataset.id);
        grid.append(document.adoptNode(li));
      });
      if (shown) shown.textContent = String(seen.size);
      const next = page.getElementById("next-page");
      if (next) {
        link.href = next.getAttribute("href");
        link.dataset.api = next.dataset.api;
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
