// The gate: POST /api/auth/verify sets the session cookie, then the chart opens.
"use strict";

const FRIENDLY = {
  invalid_key: "That key is not valid. Check that you copied the whole key; it starts with twk_.",
  key_disabled: "This key has been disabled by the owner. Ask them to enable it or to give you a new one.",
  missing_key: "Enter your API key.",
};
// Why the chart sent the partner here (?reason=…), said before they type anything.
const REASONS = {
  key_disabled: "The key you signed in with has been disabled by the owner. Ask them to enable it or to give you a new one.",
  invalid_key: "The key you signed in with no longer exists. Enter another key.",
  session_expired: "Your session has expired. Enter your API key again.",
  invalid_session: "Your session is no longer valid. Enter your API key again.",
  missing_key: "Sign in with your API key to open the chart.",
};

const form = document.getElementById("gate-form");
const input = document.getElementById("api-key");
const message = document.getElementById("gate-message");
const reasonBox = document.getElementById("gate-reason");
const submit = document.getElementById("gate-submit");
const card = document.getElementById("gate");
const signedIn = document.getElementById("signed-in");
const signOutButton = document.getElementById("gate-sign-out");
const params = new URLSearchParams(location.search);
const next = safeNext(params.get("next"));

function showReason(code) {
  const text = code === "signed_out" ? "You are signed out." : REASONS[code];
  if (!text) return;
  showMessage(reasonBox, text, code === "signed_out" ? "ok" : "warn");
  card.dataset.reason = code;
}

document.getElementById("toggle-key").addEventListener("click", (event) => {
  const showing = input.type === "text";
  input.type = showing ? "password" : "text";
  event.currentTarget.textContent = showing ? "Show" : "Hide";
  event.currentTarget.setAttribute("aria-label", showing ? "Show the key" : "Hide the key");
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
    showMessage(reasonBox, "");
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

// Signing out clears the HttpOnly cookie, which only the server can do.
signOutButton.addEventListener("click", async () => {
  signOutButton.disabled = true;
  try {
    await api("/api/auth/logout", { method: "POST" });
  } catch (err) {
    /* without a cookie we are signed out anyway */
  }
  signedIn.hidden = true;
  signOutButton.hidden = true;
  signOutButton.disabled = false;
  showReason("signed_out");
  input.focus();
});

// Already signed in (cookie) or open mode: say so instead of asking for a key. A cookie whose
// key was disabled meanwhile is told so here.
(async () => {
  showReason(params.get("signed_out") ? "signed_out" : params.get("reason"));
  try {
    const who = await api("/api/auth/verify", { method: "POST", body: {} });
    if (who.open) {
      document.getElementById("open-mode").hidden = false;
    } else {
      showMessage(reasonBox, "");
      signedIn.replaceChildren("Signed in as ", el("b", {}, who.name), ". ", el("a", { href: next }, "Open the chart"), " or enter another key.");
      signedIn.hidden = false;
      signOutButton.hidden = false;
    }
  } catch (err) {
    if (REASONS[err.code] && err.code !== "missing_key") showReason(err.code);
  }
  input.focus();
})();
