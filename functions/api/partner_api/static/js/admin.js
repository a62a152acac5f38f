// The owner's admin panel. Every write carries the CSRF token; every value is shown as text.
"use strict";

const $ = (id) => document.getElementById(id);
const admin = {
  csrf: null,
  keys: [],
  defaultRateLimit: null,
  catalog: null,
  newKeySymbols: null,
  newKey: null, // {name, copied} while a new key is on screen
  upstream: null,
  tokenStatus: null,
  chartSession: false, // the owner's chart session cookie is set (health reads bars through it)
};
const STALE_BAR_SECONDS = 150; // a 1-minute bar that closed longer ago than this is late
const QUIET_TICK_SECONDS = 30;
// A session token is a cookie value: printable ASCII without spaces, quotes, commas, semicolons
// or backslashes (RFC 6265 cookie-octet). The server checks the same.
const TOKEN_SHAPE = /^[\x21\x23-\x2B\x2D-\x3A\x3C-\x5B\x5D-\x7E]+$/;
const MAX_TOKEN_CHARS = 4096;

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

function announce(text) {
  $("keys-status").textContent = text;
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
  showTokenStatus();
  await loadHealth();
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
  if (!confirmDiscardNewKey("Sign out")) return;
  // Ends the admin session and the owner's chart session (signed out either way).
  await write("POST", "/api/admin/logout").catch(() => null);
  await api("/api/auth/logout", { method: "POST" }).catch(() => null);
  admin.chartSession = false;
  closeNewKey();
  showLogin("Signed out.");
});

// -- the owner's chart: a chart session for this browser, no key --------------------------------
async function openChartSession() {
  await write("POST", "/api/admin/chart-session");
  admin.chartSession = true;
}

$("open-chart").addEventListener("click", async () => {
  // Opened before the request so the browser does not treat it as an unasked pop-up.
  const tab = window.open("", "_blank");
  try {
    await openChartSession();
    if (tab) {
      tab.opener = null;
      tab.location.href = "/";
    } else {
      location.assign("/");
    }
  } catch (err) {
    if (tab) tab.close();
    if (!handleAuthError(err)) showMessage($("keys-message"), `Cannot open the chart: ${err.message}`);
  }
});

// -- keys -----------------------------------------------------------------------------------
function symbolsCell(record) {
  if (record.all_symbols) return el("span", { class: "chip all" }, "all markets");
  return record.symbols.map((s) => el("span", { class: "chip" }, s));
}

// `rate_limit` (requests per minute) on the record, or the deployment default; usage when the
// server reports it.
function limitCell(record) {
  const own = typeof record.rate_limit === "number";
  const limit = own ? record.rate_limit : admin.defaultRateLimit;
  const text = limit ? `${limit.toLocaleString()}/min` : "deployment default";
  const usage = usageText(record);
  return [
    el("span", {}, text),
    own || !limit ? null : el("span", { class: "usage" }, "the default"),
    usage ? el("span", { class: "usage" }, usage) : null,
  ];
}

function usageText(record) {
  const usage = record.usage;
  if (!usage || typeof usage.used !== "number") return "";
  return `${usage.used.toLocaleString()} of ${usage.limit.toLocaleString()} used this minute`;
}

function keyRow(record) {
  const label = (what) => `${what} key ${record.name}`;
  const toggle = record.enabled
    ? el("button", { class: "btn btn-small", type: "button", "data-action": "disable", "aria-label": label("Disable"), onclick: () => setEnabled(record, false) }, "Disable")
    : el("button", { class: "btn btn-small", type: "button", "data-action": "enable", "aria-label": label("Enable"), onclick: () => setEnabled(record, true) }, "Enable");
  return el("tr", { "data-key-id": record.key_id, "data-enabled": String(record.enabled) },
    el("td", { class: "name" }, record.name, el("span", { class: "id" }, record.key_id)),
    el("td", { class: "markets", "data-label": "Markets" }, symbolsCell(record)),
    el("td", { "data-label": "Status" }, el("span", { class: record.enabled ? "status-dot" : "status-dot off" }, record.enabled ? "enabled" : "disabled")),
    el("td", { class: "limit", "data-label": "Rate limit" }, limitCell(record)),
    el("td", { class: "when", "data-label": "Created" }, formatDate(record.created_at)),
    el("td", { class: "when", "data-label": "Last used" }, formatDate(record.last_used_at)),
    el("td", { class: "actions" },
      el("span", { class: "row-actions" },
        el("button", { class: "btn btn-small", type: "button", "data-action": "markets", "aria-label": label("Markets of"), onclick: () => editMarkets(record) }, "Markets"),
        el("button", { class: "btn btn-small", type: "button", "data-action": "limit", "aria-label": label("Rate limit of"), onclick: () => editLimit(record) }, "Limit"),
        toggle,
        el("button", { class: "btn btn-small btn-danger", type: "button", "data-action": "delete", "aria-label": label("Delete"), onclick: () => removeKey(record) }, "Delete"),
      ),
    ),
  );
}

function renderKeys() {
  const body = $("keys-body");
  if (!admin.keys.length) {
    body.replaceChildren(el("tr", {}, el("td", { colspan: 7, class: "empty" }, "No keys yet: the partner API is open to anyone until you create one.")));
  } else {
    body.replaceChildren(...admin.keys.map(keyRow));
  }
  $("keys-section").dataset.count = String(admin.keys.length);
}

async function loadDefaultRateLimit() {
  try {
    const data = await api("/api/admin/rate-limit");
    if (typeof data.default_per_minute === "number") admin.defaultRateLimit = data.default_per_minute;
  } catch (err) {
    /* a deployment without per-key limits: the table says "deployment default" */
  }
}

async function loadKeys() {
  try {
    if (!admin.rateLimitAsked) {
      admin.rateLimitAsked = true;
      await loadDefaultRateLimit();
    }
    const data = await api("/api/admin/keys");
    admin.keys = data.keys;
    renderKeys();
  } catch (err) {
    if (!handleAuthError(err)) showMessage($("keys-message"), err.message);
  }
}

async function keyAction(promise, done) {
  showMessage($("keys-message"), "");
  try {
    await promise;
    if (done) announce(done);
  } catch (err) {
    if (!handleAuthError(err)) showMessage($("keys-message"), err.message);
  }
  await loadKeys();
}

function setEnabled(record, enabled) {
  return keyAction(
    write("POST", `/api/admin/keys/${encodeURIComponent(record.key_id)}/${enabled ? "enable" : "disable"}`),
    `Key ${record.name} ${enabled ? "enabled" : "disabled"}.`,
  );
}

function removeKey(record) {
  if (!confirm(`Delete the key "${record.name}"? Partners using it lose access at once. This cannot be undone.`)) return;
  return keyAction(write("DELETE", `/api/admin/keys/${encodeURIComponent(record.key_id)}`), `Key ${record.name} deleted.`);
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

// -- the new key: shown once, never discarded uncopied without asking ---------------------------
function confirmDiscardNewKey(action) {
  if (!admin.newKey || admin.newKey.copied) return true;
  return confirm(
    `The key for "${admin.newKey.name}" has not been copied, and it cannot be shown again. ${action} and discard it?`,
  );
}

function closeNewKey() {
  admin.newKey = null;
  $("new-key-value").value = "";
  $("new-key").hidden = true;
  $("new-key").dataset.copied = "false";
}

function markCopied() {
  if (!admin.newKey) return;
  admin.newKey.copied = true;
  $("new-key").dataset.copied = "true";
}

window.addEventListener("beforeunload", (event) => {
  if (admin.newKey && !admin.newKey.copied) event.preventDefault();
});

$("create-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const name = $("key-name").value.trim();
  if (!name) return showMessage($("keys-message"), "Give the key a name, e.g. the partner's or the bot's.");
  if (!confirmDiscardNewKey("Create another key")) return;
  showMessage($("keys-message"), "");
  try {
    const created = await write("POST", "/api/admin/keys", { name, symbols: admin.newKeySymbols });
    closeNewKey();
    admin.newKey = { name: created.record.name, copied: false };
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
  let copied = false;
  try {
    await navigator.clipboard.writeText(input.value);
    copied = true;
  } catch (err) {
    input.select();
    copied = document.execCommand("copy");
  }
  if (copied) {
    markCopied();
    $("copy-key").textContent = "Copied";
    setTimeout(() => ($("copy-key").textContent = "Copy"), 2000);
  } else {
    input.select();
    $("new-key-for").textContent = "The browser did not allow copying: the key is selected, press Ctrl+C (⌘C).";
  }
});
// Copied by hand (selected, then Ctrl+C) counts too.
$("new-key-value").addEventListener("copy", markCopied);

$("dismiss-key").addEventListener("click", () => {
  if (!confirmDiscardNewKey("Close it")) return;
  closeNewKey();
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
  await keyAction(write("PUT", `/api/admin/keys/${encodeURIComponent(record.key_id)}/symbols`, { symbols: chosen }), `Markets of ${record.name} saved.`);
}

// -- per-key rate limit -------------------------------------------------------------------------
function editLimit(record) {
  const dialog = $("limit-dialog");
  const value = $("limit-value");
  const useDefault = $("limit-default");
  const own = typeof record.rate_limit === "number";
  $("limit-title").textContent = `Rate limit of "${record.name}"`;
  $("limit-sub").textContent = admin.defaultRateLimit
    ? `Requests per minute this key may make. The deployment's default is ${admin.defaultRateLimit.toLocaleString()}.`
    : "Requests per minute this key may make.";
  useDefault.checked = !own;
  value.oninput = () => showMessage($("limit-message"), "");
  value.value = own ? String(record.rate_limit) : admin.defaultRateLimit ? String(admin.defaultRateLimit) : "";
  const sync = () => (value.disabled = useDefault.checked);
  useDefault.onchange = sync;
  sync();
  showMessage($("limit-message"), "");
  $("limit-form").onsubmit = (event) => {
    if (event.submitter && event.submitter.value === "cancel") return;
    if (useDefault.checked) return;
    const n = Number(value.value);
    if (!Number.isInteger(n) || n < 1 || n > 1000000) {
      event.preventDefault();
      showMessage($("limit-message"), "Enter a whole number of requests per minute, from 1 to 1,000,000, or use the default.");
    }
  };
  dialog.onclose = () => {
    if (dialog.returnValue !== "save") return;
    const limit = useDefault.checked ? null : Number(value.value);
    keyAction(
      write("PUT", `/api/admin/keys/${encodeURIComponent(record.key_id)}/rate-limit`, { rate_limit: limit }),
      `Rate limit of ${record.name} saved.`,
    );
  };
  dialog.returnValue = "";
  dialog.showModal();
}

// -- session token (write-only) -----------------------------------------------------------------
// What the panel says about the token agrees with what the collector reports: never "not set"
// next to "upstream connected".
function showTokenStatus() {
  const status = admin.tokenStatus;
  if (!status) return;
  const up = admin.upstream && admin.upstream.known ? admin.upstream : null;
  const s = up ? up.status : null;
  const connected = Boolean(up && up.age_seconds !== null && up.age_seconds <= 90 && s.connected);
  let text;
  if (status.set) {
    text = `Stored on ${new Date(status.set_at).toLocaleString()}.`;
  } else if (connected && s.source && s.source !== "tradowix") {
    text = `No token stored. None is needed now: the collector reads the ${s.source} source.`;
  } else if (connected) {
    text = "No token stored here: the collector is connected with a token from its own settings (TRADOWIX_SESSION_TOKEN).";
  } else {
    text = "No token stored: the collector cannot reach Tradowix until you set one.";
  }
  $("token-status").textContent = text;
  $("token-section").dataset.set = String(status.set);
}

async function loadTokenStatus() {
  try {
    admin.tokenStatus = await api("/api/admin/session-token");
  } catch (err) {
    if (!handleAuthError(err)) showMessage($("token-message"), err.message);
  }
}

function tokenProblem(token) {
  if (!token) return "The token field is empty: paste the token from Tradowix.";
  const cookie = /^(session-token|oauth_session_token)\s*=/i.exec(token);
  if (cookie) return `Paste only the value after "${cookie[1]}=", not the cookie's name.`;
  if (token.length > MAX_TOKEN_CHARS) {
    return `The token is ${token.length.toLocaleString("en-US")} characters long; a Tradowix token is far shorter (at most ${MAX_TOKEN_CHARS.toLocaleString("en-US")}): check what you pasted.`;
  }
  if (/\s/.test(token)) return "A session token has no spaces or line breaks: check what you pasted.";
  if (!TOKEN_SHAPE.test(token)) return 'A session token has only letters, digits and signs such as - _ . ~ + / = (no quotes, commas, semicolons or backslashes): check what you pasted.';
  return null;
}

$("token-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = $("session-token");
  const token = input.value.trim();
  const problem = tokenProblem(token);
  if (problem) {
    input.value = ""; // never keep the token in the page, not even a wrong one
    showMessage($("token-message"), problem);
    return;
  }
  const question = admin.tokenStatus && admin.tokenStatus.set
    ? "Replace the stored Tradowix session token? The collector switches to the new one; the old one is not kept."
    : "Store this Tradowix session token for the collector?";
  if (!confirm(question)) {
    input.value = "";
    showMessage($("token-message"), "Not saved.", "warn");
    return;
  }
  try {
    admin.tokenStatus = await write("PUT", "/api/admin/session-token", { token });
    showTokenStatus();
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
  admin.upstream = info;
  const pill = $("upstream-pill");
  const details = $("upstream-details");
  if (!info.known) {
    pill.className = "pill pill-offline";
    pill.replaceChildren(el("i", { "aria-hidden": "true" }), el("span", {}, "upstream: no report yet"));
    details.replaceChildren(el("dt", {}, "status"), el("dd", {}, "The collector has not reported yet."));
    return;
  }
  const s = info.status;
  const fresh = info.age_seconds !== null && info.age_seconds <= 90;
  const ok = fresh && s.connected;
  pill.className = "pill " + (ok ? "pill-live" : fresh ? "pill-reconnecting" : "pill-offline");
  pill.replaceChildren(el("i", { "aria-hidden": "true" }), el("span", {}, ok ? "upstream connected" : fresh ? "upstream disconnected" : "upstream silent"));
  const rows = [
    ["connected", s.connected ? "yes" : "no"],
    ["authenticated", s.authenticated ? "yes" : "no"],
    ["source", s.source || "–"],
    ["last report", `${Math.round(info.age_seconds)} s ago`],
    ["last error", s.last_error || "none"],
  ];
  details.replaceChildren(...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, String(v))]));
}

// -- health: per market, the last closed bar's age and the link ----------------------------------
function ago(seconds) {
  if (seconds === null || seconds === undefined) return "none yet";
  const s = Math.max(0, Math.round(seconds));
  if (s < 120) return `${s} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  return `${Math.round(s / 3600)} h ago`;
}

function linkState(connected, inCollector, tickAge) {
  if (!connected) return "down";
  if (!inCollector) return "not collected";
  if (tickAge === null || tickAge === undefined) return "linked, no tick yet";
  return tickAge > QUIET_TICK_SECONDS ? `quiet (last tick ${ago(tickAge)})` : "streaming";
}

// Seconds since the symbol's newest closed 1-minute bar closed, from the bars themselves.
async function closedBarAge(symbol) {
  if (!admin.chartSession) await openChartSession();
  try {
    const data = await api("/api/candles?" + new URLSearchParams({ symbol, limit: "2" }));
    const closed = data.last_closed === false ? data.candles.slice(0, -1) : data.candles;
    return closed.length ? Date.now() / 1000 - (closed[closed.length - 1].time + 60) : null;
  } catch (err) {
    if (err.status === 401) throw err;
    return null;
  }
}

// The deployment's health view (GET /api/admin/health, docs/observability.md): per collected
// symbol the seconds since its last closed bar and its last tick, the collector's link, the
// alarms. Markets it does not list (not collected), or every market where a deployment has no
// health view yet (404), are worked out from the collector's status record and the bars.
async function healthRows() {
  let health = null;
  try {
    health = await api("/api/admin/health");
  } catch (err) {
    if (err.status === 401) throw err;
    if (err.status !== 404) $("health-note").textContent = `The health view did not answer (${err.message}); worked out from the bars instead.`;
  }
  const rows = new Map();
  if (health && Array.isArray(health.symbols)) {
    const c = health.collector || {};
    const connected = c.running !== false && c.connected !== false && c.upstream_link_up !== false;
    const alarms = (health.alarms || []).filter((a) => a.state === "ALARM").map((a) => a.name);
    $("health-note").textContent = alarms.length ? `Alarms firing: ${alarms.join(", ")}.` : "";
    for (const h of health.symbols) {
      const age = typeof h.seconds_since_last_bar === "number" ? h.seconds_since_last_bar : null;
      rows.set(h.symbol, { symbol: h.symbol, age, link: linkState(connected, true, h.last_tick_age_seconds) });
    }
  }
  const up = admin.upstream && admin.upstream.known ? admin.upstream : null;
  const connected = Boolean(up && up.age_seconds !== null && up.age_seconds <= 90 && up.status.connected);
  const linked = (up && up.status.symbols) || {};
  for (const { symbol } of (admin.catalog || { symbols: [] }).symbols) {
    if (rows.has(symbol)) continue;
    const tickAge = linked[symbol] ? linked[symbol].last_tick_age : null;
    rows.set(symbol, { symbol, age: await closedBarAge(symbol), link: linkState(connected, symbol in linked, tickAge) });
  }
  return [...rows.values()].map((r) => ({ ...r, stale: r.age === null || r.age > STALE_BAR_SECONDS }));
}

async function loadHealth() {
  let rows;
  try {
    rows = await healthRows();
  } catch (err) {
    if (!handleAuthError(err)) $("health-note").textContent = `Cannot read the health: ${err.message}`;
    return;
  }
  const body = $("health-body");
  if (!rows.length) {
    body.replaceChildren(el("tr", {}, el("td", { colspan: 3, class: "empty" }, "No markets yet.")));
    return;
  }
  body.replaceChildren(...rows.map((r) =>
    el("tr", { class: r.stale ? "stale" : "", "data-symbol": r.symbol, "data-stale": String(r.stale), "data-age": r.age === null ? "" : String(Math.round(r.age)) },
      el("th", { scope: "row" }, r.symbol),
      el("td", { class: "age" }, ago(r.age), r.stale ? el("span", { class: "sr-only" }, " (stale)") : null),
      el("td", {}, r.link),
    )));
  $("health-section").dataset.loaded = "true";
}

// -- start ------------------------------------------------------------------------------------
(async () => {
  try {
    admin.csrf = (await api("/api/admin/session")).csrf_token;
    await showPanel();
  } catch (err) {
    showLogin(err.status === 401 ? "" : err.message);
  }
  setInterval(async () => {
    if (!admin.csrf) return;
    await loadUpstream();
    showTokenStatus();
    await loadHealth();
  }, 15000);
})();
