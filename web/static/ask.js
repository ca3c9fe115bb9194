// The question box of the image detail page, on top of a plain form that works without
// JavaScript (it posts to /images/{id}/ask, which renders the page again with the answer):
// here the question goes to the JSON API (the form's data-api, POST /api/images/{id}/ask) and
// the answer, or the error's message, appears in place, without a page load. The answer area
// is aria-live, so a screen reader reads the answer; an error goes to the role=alert area.
(function () {
  "use strict";
  const form = document.getElementById("ask-form");
  if (!form || !window.fetch) return;
  const input = document.getElementById("ask-question");
  const button = document.getElementById("ask-button");
  const answerArea = document.getElementById("ask-answer");
  const errorArea = document.getElementById("ask-error");

  function showError(message) {
    answerArea.textContent = "";
    errorArea.textContent = message;
    errorArea.hidden = false;
  }

  function showAnswer(body) {
    errorArea.hidden = true;
    errorArea.textContent = "";
    answerArea.textContent = body.answer + " ";
    const detail = document.createElement("small");
    detail.textContent = "(" + body.model + ", " + Math.round(body.ms) + " ms)";
    answerArea.appendChild(detail);
  }

  // The API's one error shape is {"error": {"message": ...}}; a validation error's message
  // names the field. Anything else (a proxy's HTML page) is described by its status.
  async function errorMessage(response) {
    try {
      const body = await response.json();
      if (body && body.error && body.error.message) return body.error.message;
    } catch (ignored) { /* not JSON */ }
    return "The question could not be answered (HTTP " + response.status + ").";
  }

  async function ask(question) {
    const response = await fetch(form.dataset.api, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ question: question }),
    });
    if (!response.ok) {
      showError(await errorMessage(response));
      return;
    }
    showAnswer(await response.json());
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const question = input.value.trim();
    if (!question) {
      showError("The question is empty: ask something about the image.");
      return;
    }
    button.disabled = true;
    form.setAttribute("aria-busy", "true");
    answerArea.textContent = "Thinking…";
    try {
      await ask(question);
    } catch (failure) {
      showError("The server could not be reached: " + failure.message);
    } finally {
      button.disabled = false;
      form.removeAttribute("aria-busy");
    }
  });
})();
