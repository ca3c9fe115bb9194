// The search page and the image detail page, on top of plain forms and links that work
// without JavaScript:
// - "/" focuses the search box (from anywhere but a text field);
// - changing the order, the mode or rerank searches again at once; "scores" shows each
//   result's score on its thumbnail (and keeps that in the URL);
// - infinite scroll: when the "Next page" link comes into view, the next page is fetched (the
//   link's URL, which carries the API's cursor) and its results are appended, an id already
//   shown being skipped, until the last page;
// - search by image: drop an image anywhere, paste one, or pick a file, and the search starts
//   at once (posted to /search/image, whose page answers with the results); "more / less like
//   this" then posts the image again with " + id:N" / " - id:N" as its query;
// - Back returns to the same results and scroll position (a snapshot in sessionStorage);
// - the detail page: Left / Right move through the results the user came from (the list is
//   remembered when a result is opened), Esc goes back to them.
(function () {
  "use strict";
  const LIST_KEY = "pixseek:results";
  const SNAPSHOT_KEY = "pixseek:snapshot";

  function typingIn(element) {
    if (!element) return false;
    const tag = element.tagName;
    return element.isContentEditable || tag === "TEXTAREA" || tag === "SELECT" ||
      (tag === "INPUT" && !["checkbox", "radio", "button", "submit"].includes(element.type));
  }

  // "/" jumps to the search box on every page that has one.
  document.addEventListener("keydown", (event) => {
    if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) return;
    if (typingIn(document.activeElement)) return;
    const box = document.getElementById("q");
    if (!box) return;
    event.preventDefault();
    box.focus();
    box.select();
  });

  // Opening a result remembers the list it belongs to, for Left / Right on the detail page.
  document.addEventListener("click", (event) => {
    const link = event.target.closest && event.target.closest("#results li.result a.thumb");
    if (!link) return;
    const ids = [...document.querySelectorAll("#results li.result")].map((li) => li.dataset.id);
    const from = location.pathname + location.search;
    sessionStorage.setItem(LIST_KEY, JSON.stringify({ from: from, ids: ids }));
  });

  const detail = document.getElementById("image-detail");
  if (detail) {
    detailPage(detail);
    return;
  }
  const form = document.getElementById("search-form");
  if (form) searchPage(form);

  function detailPage(section) {
    const id = section.dataset.id;
    let list = null;
    try {
      list = JSON.parse(sessionStorage.getItem(LIST_KEY) || "null");
    } catch (error) {
      list = null;
    }
    const position = list && Array.isArray(list.ids) ? list.ids.indexOf(id) : -1;
    const nav = document.getElementById("result-nav");
    const sameOriginReferrer = document.referrer &&
      new URL(document.referrer).origin === location.origin;
    const links = { prev: null, next: null };
    if (position >= 0) {
      nav.hidden = false;
      document.getElementById("back-to-results").href = list.from;
      document.getElementById("result-position").textContent =
        (position + 1) + " of " + list.ids.length;
      [["prev", position - 1], ["next", position + 1]].forEach(([name, index]) => {
        const link = document.getElementById(name + "-result");
        if (index < 0 || index >= list.ids.length) return;
        link.href = "/images/" + list.ids[index];
        link.hidden = false;
        links[name] = link;
        // moving through the list replaces this entry, so Back (and Esc) return to the list
        link.addEventListener("click", (event) => {
          event.preventDefault();
          location.replace(link.href);
        });
      });
      document.getElementById("back-to-results").addEventListener("click", (event) => {
        event.preventDefault();
        goBack();
      });
    }
    function goBack() {
      if (sameOriginReferrer && history.length > 1) history.back();
      else if (position >= 0) location.href = list.from;
    }
    document.addEventListener("keydown", (event) => {
      if (event.ctrlKey || event.metaKey || event.altKey || typingIn(document.activeElement)) return;
      if (event.key === "ArrowLeft" && links.prev) location.replace(links.prev.href);
      else if (event.key === "ArrowRight" && links.next) location.replace(links.next.href);
      else if (event.key === "Escape") goBack();
      else return;
      event.preventDefault();
    });
  }

  function searchPage(searchForm) {
    const output = document.getElementById("search-output");
    const imageForm = document.getElementById("image-form");
    const fileInput = document.getElementById("file");
    const overlay = document.getElementById("drop-overlay");
    const query = document.getElementById("q");
    let imageQuery = null;  // {files, q, preview}: the image search shown, for its next pages
    let observer = null;
    let loading = false;

    function showError(message) {
      let box = document.getElementById("error");
      if (!box) {
        box = document.createElement("p");
        box.className = "error";
        box.id = "error";
        box.setAttribute("role", "alert");
        output.prepend(box);
      }
      box.textContent = message;
      box.hidden = false;
    }

    // Blank fields and defaults stay out of the URL, so it says only what was chosen.
    searchForm.addEventListener("submit", () => {
      [...searchForm.elements].forEach((field) => {
        if (!field.name || field.type === "checkbox") return;
        if (!field.value.trim() || field.value === field.dataset.default) field.disabled = true;
      });
    });
    window.addEventListener("pageshow", () => {
      [...searchForm.elements].forEach((field) => { field.disabled = false; });
    });

    // --- options that search again at once ---------------------------------------------
    ["sort", "mode", "rerank"].forEach((name) => {
      const control = document.getElementById(name);
      if (!control) return;
      control.addEventListener("change", () => {
        if (query.value.trim()) searchForm.requestSubmit();
      });
    });
    const scores = document.getElementById("scores");
    scores.addEventListener("change", () => {
      const grid = document.getElementById("results");
      if (grid) grid.classList.toggle("show-scores", scores.checked);
      const url = new URL(location.href);
      if (scores.checked) url.searchParams.set("scores", "1");
      else url.searchParams.delete("scores");
      history.replaceState(history.state, "", url.pathname + url.search);
    });

    // --- infinite scroll ------------------------------------------------------------------
    function seenIds() {
      return new Set([...document.querySelectorAll("#results li.result")].map((li) => li.dataset.id));
    }

    async function fetchPage(link) {
      if (link.dataset.cursor && imageQuery) {
        return postImages(imageQuery, link.dataset.cursor);
      }
      const response = await fetch(link.href, { headers: { Accept: "text/html" } });
      return parse(response);
    }

    async function parse(response) {
      const text = await response.text();
      return new DOMParser().parseFromString(text, "text/html");
    }

    async function loadMore() {
      const link = document.getElementById("next-page");
      if (loading || !link) return;
      loading = true;
      link.setAttribute("aria-busy", "true");
      try {
        const page = await fetchPage(link);
        const problem = page.getElementById("error");
        if (problem) throw new Error(problem.textContent.trim());
        const seen = seenIds();
        const fresh = [...page.querySelectorAll("#results li.result")]
          .filter((li) => !seen.has(li.dataset.id));
        const grid = document.getElementById("results");
        fresh.forEach((li) => grid.append(document.adoptNode(li)));
        const next = page.getElementById("next-page");
        if (next) {
          link.replaceWith(document.adoptNode(next));
        } else {
          link.parentElement.remove();
        }
      } catch (error) {
        if (observer) observer.disconnect();  // the plain link still works; say why we stopped
        showError("Could not load more results: " + error.message);
        loading = false;
        return;
      }
      loading = false;
      watchNextPage();
    }

    function watchNextPage() {
      if (observer) observer.disconnect();
      const link = document.getElementById("next-page");
      if (!link || !("IntersectionObserver" in window)) return;
      // Observing anew reports at once whether the link is already in view (a tall screen).
      observer = new IntersectionObserver((entries) => {
        if (entries.some((entry) => entry.isIntersecting)) loadMore();
      }, { rootMargin: "600px 0px" });
      observer.observe(link);
    }

    // --- search by image ---------------------------------------------------------------
    function imageFormData(files, q, cursor) {
      const data = new FormData(imageForm);
      data.delete("file");
      files.forEach((file) => data.append("file", file, file.name || "pasted-image.png"));
      if (q) data.set("q", q);
      if (cursor) data.set("cursor", cursor);
      if (scores.checked) data.set("scores", "1");
      return data;
    }

    async function postImages(search, cursor) {
      const response = await fetch("/search/image", {
        method: "POST",
        body: imageFormData(search.files, search.q, cursor),
        headers: { Accept: "text/html" },
      });
      return parse(response);
    }

    async function thumbnailOf(file) {
      // a small data URL drawn from the file itself: no object URL to fetch, and it survives
      // the snapshot for Back
      try {
        const bitmap = await createImageBitmap(file);
        const scale = Math.min(1, 320 / Math.max(bitmap.width, bitmap.height));
        const canvas = document.createElement("canvas");
        canvas.width = Math.max(1, Math.round(bitmap.width * scale));
        canvas.height = Math.max(1, Math.round(bitmap.height * scale));
        canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
        bitmap.close();
        return canvas.toDataURL("image/jpeg", 0.85);
      } catch (error) {
        return null;  // a file the browser cannot draw: the server says what is wrong with it
      }
    }

    function showQueryImage(search) {
      const box = document.getElementById("query-image");
      if (!box) return;
      const names = search.files.map((f) => f.name || "pasted image").join(", ");
      box.replaceChildren();
      const figure = document.createElement("figure");
      if (search.preview) {
        const img = document.createElement("img");
        img.src = search.preview;
        img.alt = "Your query image, " + names;
        figure.append(img);
      }
      const caption = document.createElement("figcaption");
      caption.append("Images like ");
      const strong = document.createElement("strong");
      strong.textContent = names;
      caption.append(strong);
      if (search.q) caption.append(" " + search.q);
      figure.append(caption);
      box.append(figure);
    }

    async function searchByImage(files, q) {
      const images = [...files].filter((f) => f.type.startsWith("image/") || !f.type);
      if (!images.length) {
        showError("That is not an image: drop, paste or pick a picture file (JPEG, PNG, WebP…).");
        return;
      }
      const previous = imageQuery;
      imageQuery = {
        files: images,
        q: q || "",
        preview: previous && previous.files === images ? previous.preview : await thumbnailOf(images[0]),
      };
      output.setAttribute("aria-busy", "true");
      try {
        const page = await postImages(imageQuery, null);
        const fresh = page.getElementById("search-output");
        if (!fresh) throw new Error("the server answered without results");
        output.innerHTML = fresh.innerHTML;
        showQueryImage(imageQuery);
        watchNextPage();
        window.scrollTo(0, output.getBoundingClientRect().top + window.scrollY - 8);
      } catch (error) {
        showError("The image search failed: " + error.message + ". Try again, or pick the file with the button.");
      } finally {
        output.removeAttribute("aria-busy");
      }
    }

    fileInput.addEventListener("change", () => {
      if (fileInput.files.length) searchByImage([...fileInput.files], "");
    });
    // The "Search by image" button still posts the form (a page of its own, as without
    // JavaScript).

    function hasFiles(event) {
      return event.dataTransfer && [...event.dataTransfer.types].includes("Files");
    }
    document.addEventListener("dragenter", (event) => {
      if (hasFiles(event)) overlay.hidden = false;
    });
    document.addEventListener("dragover", (event) => {
      if (!hasFiles(event)) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = "copy";
    });
    document.addEventListener("dragleave", (event) => {
      if (event.relatedTarget === null) overlay.hidden = true;
    });
    document.addEventListener("drop", (event) => {
      overlay.hidden = true;
      if (!event.dataTransfer || !event.dataTransfer.files.length) return;
      event.preventDefault();
      searchByImage([...event.dataTransfer.files], "");
    });
    document.addEventListener("paste", (event) => {
      const files = event.clipboardData ? [...event.clipboardData.files] : [];
      const images = files.filter((f) => f.type.startsWith("image/"));
      if (!images.length) return;  // text pastes into the box as usual
      event.preventDefault();
      searchByImage(images, "");
    });

    // "more / less like this" on the results of an uploaded image: post it again with the term
    output.addEventListener("click", (event) => {
      const link = event.target.closest("a.more-like, a.less-like");
      if (!link || !imageQuery) return;
      event.preventDefault();
      const q = imageQuery.q ? imageQuery.q + " " + link.dataset.term : link.dataset.term;
      searchByImage(imageQuery.files, q);
    });

    // --- Back returns to the same results and scroll position ------------------------------
    window.addEventListener("pagehide", () => {
      const snapshot = {
        url: location.href,
        html: output.innerHTML,
        scrollY: window.scrollY,
        image: Boolean(imageQuery),
      };
      try {
        sessionStorage.setItem(SNAPSHOT_KEY, JSON.stringify(snapshot));
      } catch (error) {
        sessionStorage.removeItem(SNAPSHOT_KEY);  // over the quota: Back shows the first page
      }
    });
    const navigation = performance.getEntriesByType("navigation")[0];
    let snapshot = null;
    try {
      snapshot = JSON.parse(sessionStorage.getItem(SNAPSHOT_KEY) || "null");
    } catch (error) {
      snapshot = null;
    }
    if (navigation && navigation.type === "back_forward" && snapshot && snapshot.url === location.href) {
      output.innerHTML = snapshot.html;
      if (snapshot.image) {  // the image itself is gone: no further pages
        const next = document.getElementById("next-page");
        if (next) next.parentElement.remove();
      }
      history.scrollRestoration = "manual";
      window.scrollTo(0, snapshot.scrollY);
    }
    watchNextPage();
  }
})();
