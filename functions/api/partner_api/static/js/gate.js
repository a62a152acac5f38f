// The gate: POST /api/auth/verify sets the session cookie, then the chart opens.
"use strict";

const FRIENDLY = {
  invalid_key: "That key is not valid. Check that you copied the whole key; it starts with twk_.",
  key_disabled: "This key has been disabled by the owner. Ask them to enable it or to give you a new one.",
  missing_key: "Enter your API key.",
};

const form = document.getElementById("gate-form");
const input = document.getElementById("api-key");
const message = document.getElementById("gate-message");
const submit = document.getElementById("gate-submit");
const card = document.getElementById("gate");
const next = safeNext(new URLSearchParams(location.search).get("next"));

document.getElementById("toggle-key").addEventListener("click", (event) => {
  const showing = input.type === "text";
  input.type = showing ? "password" : "text";
  event.currentTarget.textContent = showing ? "Show" : "Hide";
});

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const key = input.value.trim();
  if (!key) {
    showMessage(message, FRIENDLY.missing_key);
    input.focus();
    return;
  }
  submit.disabled = true;
  submit.textContent = "Checking…";
  card.dataset.state = "checking";
  try {
    await api("/api/auth/verify", { method: "POST", body: { api_key: key } });
    card.dataset.state = "ok";
    showMessage(message, "Key accepted. Opening the chart…", "ok");
    location.assign(next);
  } catch (err) {
    card.dataset.state = "refused";
    let text = FRIENDLY[err.code] || err.message;
    if (err.status === 429 && err.retryAfter) text = `Too many attempts. Try again in ${err.retryAfter} s.`;
    showMessage(message, text);
    input.select();
    submit.disabled = false;
    submit.textContent = "Open chart";
  }
});

// Already signed in (cookie) or open mode: say so instead of asking for a key.
(async () => {
  try {
    const who = await api("/api/auth/verify", { method: "POST" });
    if (who.open) {
      document.getElementById("open-mode").hidden = false;
    } else {
      const box = document.getElementById("signed-in");
      box.replaceChildren("Signed in as ", el("b", {}, who.name), ". ", el("a", { href: next }, "Open the chart"), " or enter another key.");
      box.hidden = false;
    }
  } catch (err) {
    /* not signed in: the form is what the visitor needs */
  }
  input.focus();
})();
