// The owner's admin panel. Every write carries the CSRF token; every value is shown as text.
"use strict";

const $ = (id) => document.getElementById(id);
const admin = { csrf: null, keys: [], catalog: null, newKeySymbols: null };

function write(method, path, body) {
  return api(path, { method, body, headers: { "X-CSRF-Token": admin.csrf || "" } });
}

function handleAuthError(err) {
  if (err.status === 401) {
    showLogin("Your admin session has ended. Sign in again.");
    return true;
  }
  return false;
}

// -- views ----------------------------------------------------------------------------------
function showLogin(text) {
  admin.csrf = null;
  $("panel-view").hidden = true;
  $("login-view").hidden = false;
  document.body.dataset.view = "login";
  showMessage($("login-message"), text || "", "warn");
  $("admin-secret").focus();
}

async function showPanel() {
  $("login-view").hidden = true;
  $("panel-view").hidden = false;
  document.body.dataset.view = "panel";
  await Promise.all([loadKeys(), loadCatalog(), loadTokenStatus(), loadUpstream()]);
}

// -- login ----------------------------------------------------------------------------------
$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const secret = $("admin-secret").value;
  if (!secret) return showMessage($("login-message"), "Enter the admin secret.");
  const button = $("login-submit");
  button.disabled = true;
  try {
    const session = await api("/api/admin/login", { method: "POST", body: { secret } });
    admin.csrf = session.csrf_token;
    $("admin-secret").value = "";
    showMessage($("login-message"), "");
    await showPanel();
  } catch (err) {
    const text = err.status === 429 ? `Too many wrong secrets. Try again in ${err.retryAfter || "a few"} s.` : err.message;
    showMessage($("login-message"), text);
  } finally {
    button.disabled = false;
  }
});

$("logout").addEventListener("click", async () => {
  try {
    await write("POST", "/api/admin/logout");
  } catch (err) {
    /* signed out either way */
  }
  showLogin("Signed out.");
});

// -- keys -----------------------------------------------------------------------------------
function symbolsCell(record) {
  if (record.all_symbols) return el("span", { class: "chip all" }, "all markets");
  return record.symbols.map((s) => el("span", { class: "chip" }, s));
}

function keyRow(record) {
  const toggle = record.enabled
    ? el("button", { class: "btn btn-small", type: "button", "data-action": "disable", onclick: () => setEnabled(record, false) }, "Disable")
    : el("button", { class: "btn btn-small", type: "button", "data-action": "enable", onclick: () => setEnabled(record, true) }, "Enable");
  return el("tr", { "data-key-id": record.key_id, "data-enabled": String(record.enabled) },
    el("td", { class: "name" }, record.name, el("span", { class: "id" }, record.key_id)),
    el("td", {}, symbolsCell(record)),
    el("td", {}, el("span", { class: record.enabled ? "status-dot" : "status-dot off" }, record.enabled ? "enabled" : "disabled")),
    el("td", { class: "when" }, formatDate(record.created_at)),
    el("td", { class: "when" }, formatDate(record.last_used_at)),
    el("td", { class: "actions" },
      el("button", { class: "btn btn-small", type: "button", "data-action": "markets", onclick: () => editMarkets(record) }, "Markets"),
      toggle,
      el("button", { class: "btn btn-small btn-danger", type: "button", "data-action": "delete", onclick: () => removeKey(record) }, "Delete"),
    ),
  );
}

function renderKeys() {
  const body = $("keys-body");
  if (!admin.keys.length) {
    body.replaceChildren(el("tr", {}, el("td", { colspan: 6, class: "empty" }, "No keys yet: the partner API is open to anyone until you create one.")));
  } else {
    body.replaceChildren(...admin.keys.map(keyRow));
  }
  $("keys-section").dataset.count = String(admin.keys.length);
}

async function loadKeys() {
  try {
    admin.keys = (await api("/api/admin/keys")).keys;
    renderKeys();
  } catch (err) {
    if (!handleAuthError(err)) showMessage($("keys-message"), err.message);
  }
}

async function keyAction(promise) {
  showMessage($("keys-message"), "");
  try {
    await promise;
  } catch (err) {
    if (!handleAuthError(err)) showMessage($("keys-message"), err.message);
  }
  await loadKeys();
}

function setEnabled(record, enabled) {
  return keyAction(write("POST", `/api/admin/keys/${encodeURIComponent(record.key_id)}/${enabled ? "enable" : "disable"}`));
}

function removeKey(record) {
  if (!confirm(`Delete the key "${record.name}"? Partners using it lose access at once. This cannot be undone.`)) return;
  return keyAction(write("DELETE", `/api/admin/keys/${encodeURIComponent(record.key_id)}`));
}

function describeChoice(symbols) {
  return symbols === null ? "All markets" : `${symbols.length} market${symbols.length === 1 ? "" : "s"}`;
}

$("create-symbols").addEventListener("click", async () => {
  const chosen = await pickMarkets("Markets for the new key", "Which markets the new key may read.", admin.newKeySymbols);
  if (chosen === undefined) return;
  admin.newKeySymbols = chosen;
  $("create-symbols").textContent = describeChoice(chosen);
});

$("create-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const name = $("key-name").value.trim();
  if (!name) return showMessage($("keys-message"), "Give the key a name, e.g. the partner's or the bot's.");
  showMessage($("keys-message"), "");
  try {
    const created = await write("POST", "/api/admin/keys", { name, symbols: admin.newKeySymbols });
    $("new-key-value").value = created.key;
    $("new-key-for").textContent = `For "${created.record.name}" (${created.record.key_id}). Give it to the partner over a private channel.`;
    $("new-key").hidden = false;
    $("key-name").value = "";
    admin.newKeySymbols = null;
    $("create-symbols").textContent = describeChoice(null);
  } catch (err) {
    if (!handleAuthError(err)) showMessage($("keys-message"), err.message);
  }
  await loadKeys();
});

$("copy-key").addEventListener("click", async () => {
  const input = $("new-key-value");
  try {
    await navigator.clipboard.writeText(input.value);
  } catch (err) {
    input.select();
    document.execCommand("copy");
  }
  $("copy-key").textContent = "Copied";
  setTimeout(() => ($("copy-key").textContent = "Copy"), 2000);
});

$("dismiss-key").addEventListener("click", () => {
  $("new-key-value").value = "";
  $("new-key").hidden = true;
});

// -- market picker ----------------------------------------------------------------------------
async function loadCatalog() {
  try {
    admin.catalog = await api("/api/admin/symbols");
  } catch (err) {
    handleAuthError(err);
  }
}

// Resolves to null (all markets), a list of symbols, or undefined (cancelled).
function pickMarkets(title, subtitle, current) {
  const dialog = $("picker");
  const list = $("picker-list");
  const all = $("picker-all");
  $("picker-title").textContent = title;
  $("picker-sub").textContent = subtitle;
  showMessage($("picker-message"), "");
  list.replaceChildren();
  const catalog = admin.catalog || { categories: {}, symbols: [] };
  const names = Object.fromEntries(catalog.symbols.map((s) => [s.symbol, s.name]));
  for (const [category, symbols] of Object.entries(catalog.categories)) {
    list.append(el("fieldset", {},
      el("legend", {}, category),
      symbols.map((symbol) => el("label", {},
        el("input", { type: "checkbox", value: symbol, checked: current !== null && current.includes(symbol) }),
        symbol, el("small", {}, names[symbol] || "")))));
  }
  all.checked = current === null;
  const sync = () => list.querySelectorAll("input").forEach((box) => (box.disabled = all.checked));
  all.onchange = sync;
  sync();
  dialog.showModal();
  return new Promise((resolve) => {
    const form = $("picker-form");
    form.onsubmit = (event) => {
      if (event.submitter && event.submitter.value === "cancel") return; // closes the dialog
      const picked = [...list.querySelectorAll("input:checked")].map((box) => box.value);
      if (!all.checked && !picked.length) {
        event.preventDefault();
        showMessage($("picker-message"), "Pick at least one market, or allow all markets.");
      }
    };
    dialog.onclose = () => {
      if (dialog.returnValue !== "save") return resolve(undefined);
      resolve(all.checked ? null : [...list.querySelectorAll("input:checked")].map((box) => box.value));
    };
  });
}

async function editMarkets(record) {
  const chosen = await pickMarkets(`Markets for "${record.name}"`, "Partners using this key see only these markets.", record.all_symbols ? null : record.symbols);
  if (chosen === undefined) return;
  await keyAction(write("PUT", `/api/admin/keys/${encodeURIComponent(record.key_id)}/symbols`, { symbols: chosen }));
}

// -- session token (write-only) -----------------------------------------------------------------
function showTokenStatus(status) {
  $("token-status").textContent = status.set ? `Set on ${new Date(status.set_at).toLocaleString()}.` : "Not set yet: the collector cannot reach Tradowix.";
  $("token-section").dataset.set = String(status.set);
}

async function loadTokenStatus() {
  try {
    showTokenStatus(await api("/api/admin/session-token"));
  } catch (err) {
    if (!handleAuthError(err)) showMessage($("token-message"), err.message);
  }
}

$("token-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = $("session-token");
  try {
    showTokenStatus(await write("PUT", "/api/admin/session-token", { token: input.value }));
    showMessage($("token-message"), "Saved. The collector picks it up on its next connection.", "ok");
  } catch (err) {
    if (!handleAuthError(err)) showMessage($("token-message"), err.message);
  } finally {
    input.value = ""; // never keep the token in the page
  }
});

// -- upstream ---------------------------------------------------------------------------------
async function loadUpstream() {
  let info;
  try {
    info = await api("/api/admin/upstream");
  } catch (err) {
    handleAuthError(err);
    return;
  }
  const pill = $("upstream-pill");
  const details = $("upstream-details");
  if (!info.known) {
    pill.className = "pill pill-offline";
    pill.replaceChildren(el("i"), el("span", {}, "upstream: no report yet"));
    details.replaceChildren(el("dt", {}, "status"), el("dd", {}, "The collector has not reported yet."));
    return;
  }
  const s = info.status;
  const fresh = info.age_seconds !== null && info.age_seconds <= 90;
  const ok = fresh && s.connected;
  pill.className = "pill " + (ok ? "pill-live" : fresh ? "pill-reconnecting" : "pill-offline");
  pill.replaceChildren(el("i"), el("span", {}, ok ? "upstream connected" : fresh ? "upstream disconnected" : "upstream silent"));
  const rows = [
    ["connected", s.connected ? "yes" : "no"],
    ["authenticated", s.authenticated ? "yes" : "no"],
    ["source", s.source || "–"],
    ["last report", `${Math.round(info.age_seconds)} s ago`],
    ["last error", s.last_error || "none"],
  ];
  details.replaceChildren(...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, String(v))]));
}

// -- start ------------------------------------------------------------------------------------
(async () => {
  try {
    admin.csrf = (await api("/api/admin/session")).csrf_token;
    await showPanel();
  } catch (err) {
    showLogin(err.status === 401 ? "" : err.message);
  }
  setInterval(() => admin.csrf && loadUpstream(), 15000);
})();
