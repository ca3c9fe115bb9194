// The jobs page: start, cancel and resume jobs through the JSON API (with the admin token when
// the server has one), and keep the table live from the Server-Sent Events of
// GET /api/jobs/events. That stream ends by itself when no job is at work (the page then looks
// again every IDLE_MS, for jobs started elsewhere) and after a few seconds (so a stopping server
// is not held up; the page connects again at once). Without EventSource, it polls GET /api/jobs.
(function () {
  "use strict";
  const RECONNECT_MS = 1000;
  const IDLE_MS = 10000;
  const POLL_BUSY_MS = 1000;
  const table = document.getElementById("jobs");
  const rows = table.querySelector("tbody");
  const limit = table.dataset.limit || "50";
  const errorBox = document.getElementById("error");
  const noJobs = document.getElementById("no-jobs");
  const tokenInput = document.getElementById("job-token");
  const collections = document.getElementById("collection-names");
  let source = null;
  let timer = null;

  if (tokenInput) tokenInput.value = sessionStorage.getItem("pixseek-token") || "";

  function headers() {
    const h = { "Content-Type": "application/json" };
    if (tokenInput && tokenInput.value) {
      sessionStorage.setItem("pixseek-token", tokenInput.value);
      h.Authorization = "Bearer " + tokenInput.value;
    }
    return h;
  }

  function showError(message) {
    errorBox.textContent = message || "";
    errorBox.hidden = !message;
  }

  async function call(method, url, body) {
    const response = await fetch(url, { method, headers: headers(), body: body && JSON.stringify(body) });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error((data.error && data.error.message) || response.statusText);
    return data;
  }

  function isActive(state) {
    return state === "queued" || state === "running";
  }

  function formatEta(seconds) {
    if (seconds === null || seconds === undefined) return "";
    const left = Math.round(seconds);
    return left < 120 ? left + " s" : Math.floor(left / 60) + " min";
  }

  function cell(tag, className, label, ...children) {
    const element = document.createElement(tag);
    element.className = className;
    element.dataset.label = label;
    element.append(...children);
    return element;
  }

  function progressCell(job) {
    const bar = document.createElement("progress");
    bar.setAttribute("aria-label", "Job " + job.id + " progress");
    if (job.total) {
      bar.max = job.total;
      bar.value = job.done;
    } else if (!isActive(job.state)) {
      bar.max = 1;
      bar.value = 1;
    }
    const count = document.createElement("span");
    count.className = "count";
    count.textContent = job.done + "/" + job.total;
    return cell("td", "progress", "Progress", bar, " ", count);
  }

  function failuresCell(job) {
    const count = document.createElement("span");
    count.className = "failed-count";
    count.textContent = String(job.failed);
    const td = cell("td", "failures", "Failures", count);
    const reasons = Object.entries(job.collection_failures_by_reason || {});
    if (reasons.length) {
      const list = document.createElement("ul");
      list.className = "reasons";
      list.setAttribute("aria-label", "Failed images of collection " + job.collection + " by reason");
      for (const [reason, n] of reasons) {
        const item = document.createElement("li");
        const name = document.createElement("span");
        name.className = "reason";
        name.textContent = reason;
        const number = document.createElement("span");
        number.className = "reason-count";
        number.textContent = String(n);
        item.append(name, ": ", number);
        list.append(item);
      }
      td.append(list);
    }
    return td;
  }

  function actionCell(job) {
    const td = cell("td", "actions", "Actions");
    const verb = isActive(job.state) ? "Cancel" : (job.state === "cancelled" || job.state === "failed") ? "Resume" : null;
    if (verb) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = verb.toLowerCase();
      button.dataset.id = job.id;
      button.textContent = verb;
      button.setAttribute("aria-label", verb + " job " + job.id);
      td.append(button);
    }
    return td;
  }

  function renderRow(job) {
    const row = document.createElement("tr");
    row.dataset.id = job.id;
    row.dataset.state = job.state;
    const id = cell("th", "job-id", "Job", "#" + job.id);
    id.scope = "row";
    if (job.resumed_from) {
      const note = document.createElement("span");
      note.className = "resumes";
      note.textContent = "resumes #" + job.resumed_from;
      id.append(" ", note);
    }
    const badge = document.createElement("span");
    badge.className = "state-badge state-" + job.state;
    badge.textContent = job.state;
    row.append(
      id,
      cell("td", "state", "State", badge),
      cell("td", "collection", "Collection", job.collection || ""),
      progressCell(job),
      cell("td", "rate", "Images/s", job.rate ? job.rate.toFixed(1) : ""),
      cell("td", "eta", "ETA", formatEta(job.eta_seconds)),
      failuresCell(job),
      cell("td", "job-error", "Note", job.error || ""),
      actionCell(job),
    );
    return row;
  }

  // Replace the job's row, or insert it in id order (newest first). Focus on the old row's
  // button moves to the new row's (Cancel becomes Resume in place), not to the page's top.
  function upsert(job) {
    const fresh = renderRow(job);
    const old = rows.querySelector('tr[data-id="' + job.id + '"]');
    if (old) {
      const hadFocus = old.contains(document.activeElement);
      old.replaceWith(fresh);
      const button = hadFocus && fresh.querySelector("button");
      if (button) button.focus();
    } else {
      const after = Array.from(rows.children).find((row) => Number(row.dataset.id) < job.id);
      rows.insertBefore(fresh, after || null);
    }
    noJobs.hidden = rows.children.length > 0;
    if (job.collection && collections && !collections.querySelector('option[value="' + CSS.escape(job.collection) + '"]')) {
      const option = document.createElement("option");
      option.value = job.collection;
      collections.append(option);
    }
  }

  function stop() {
    clearTimeout(timer);
    if (source) source.close();
    source = null;
  }

  function watchIn(delay) {
    stop();
    timer = setTimeout(window.EventSource ? openStream : poll, delay);
  }

  function openStream() {
    source = new EventSource("/api/jobs/events?limit=" + encodeURIComponent(limit));
    source.onmessage = (event) => {
      const update = JSON.parse(event.data);
      update.jobs.forEach(upsert);
      if (update.active === 0) watchIn(IDLE_MS);
    };
    source.onerror = () => watchIn(RECONNECT_MS); // the stream ended, or the server is away
  }

  async function poll() {
    try {
      const jobs = await call("GET", "/api/jobs?limit=" + encodeURIComponent(limit));
      jobs.forEach(upsert);
      watchIn(jobs.some((job) => isActive(job.state)) ? POLL_BUSY_MS : IDLE_MS);
    } catch (err) {
      showError(err.message);
      watchIn(IDLE_MS);
    }
  }

  document.getElementById("job-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    showError("");
    const button = document.getElementById("job-start");
    button.disabled = true;
    try {
      upsert(await call("POST", "/api/jobs", {
        path: document.getElementById("job-path").value.trim(),
        collection: document.getElementById("job-collection").value.trim() || "default",
      }));
      watchIn(0);
    } catch (err) {
      showError(err.message);
    } finally {
      button.disabled = false;
    }
  });

  rows.addEventListener("click", async (event) => {
    const button = event.target.closest("button.cancel, button.resume");
    if (!button) return;
    showError("");
    button.disabled = true;
    try {
      upsert(await call("POST", "/api/jobs/" + button.dataset.id + "/" + button.className));
      watchIn(0);
    } catch (err) {
      showError(err.message);
      button.disabled = false;
    }
  });

  watchIn(0);
})();
