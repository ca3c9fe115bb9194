// The jobs page: start and cancel jobs through the JSON API (with the admin token when one is
// required), and refresh the table every second while a job is queued or running.
(function () {
  "use strict";
  const table = document.querySelector("#jobs tbody");
  const errorBox = document.getElementById("error");
  const tokenInput = document.getElementById("job-token");
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

  function cell(text) {
    const td = document.createElement("td");
    td.textContent = text;
    return td;
  }

  function render(jobs) {
    table.replaceChildren(...jobs.map((job) => {
      const row = document.createElement("tr");
      row.dataset.id = job.id;
      row.dataset.state = job.state;
      const progress = document.createElement("td");
      const bar = document.createElement("progress");
      bar.max = job.total || 1;
      bar.value = job.done;
      progress.append(bar, " " + job.done + "/" + job.total);
      const state = cell(job.state);
      state.className = "state";
      const action = document.createElement("td");
      if (job.state === "queued" || job.state === "running") {
        const button = document.createElement("button");
        button.className = "cancel";
        button.dataset.id = job.id;
        button.textContent = "Cancel";
        action.append(button);
      }
      row.append(cell(job.id), state, cell(job.collection || ""), progress, cell(job.failed),
                 cell(job.rate ? job.rate.toFixed(1) : ""), cell(job.error || ""), action);
      return row;
    }));
  }

  async function refresh() {
    try {
      const jobs = await call("GET", "/api/jobs");
      render(jobs);
      const busy = jobs.some((job) => job.state === "queued" || job.state === "running");
      setTimeout(refresh, busy ? 1000 : 5000);
    } catch (err) {
      showError(err.message);
      setTimeout(refresh, 5000);
    }
  }

  document.getElementById("job-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    showError("");
    try {
      await call("POST", "/api/jobs", {
        path: document.getElementById("job-path").value,
        collection: document.getElementById("job-collection").value || "default",
      });
      await refresh();
    } catch (err) {
      showError(err.message);
    }
  });

  table.addEventListener("click", async (event) => {
    const button = event.target.closest("button.cancel");
    if (!button) return;
    showError("");
    try {
      await call("POST", "/api/jobs/" + button.dataset.id + "/cancel");
      await refresh();
    } catch (err) {
      showError(err.message);
    }
  });

  refresh();
})();
