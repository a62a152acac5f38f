// Shared by the chart, gate and admin pages: JSON calls and safe DOM building (text only, never HTML).
"use strict";

class ApiError extends Error {
  constructor(status, code, message, retryAfter) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

async function api(path, options = {}) {
  const init = { method: options.method || "GET", credentials: "same-origin", headers: { Accept: "application/json" } };
  if (options.body !== undefined) {
    init.body = JSON.stringify(options.body);
    init.headers["Content-Type"] = "application/json";
  }
  Object.assign(init.headers, options.headers || {});
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, "network", "Cannot reach the server. Check your connection and try again.");
  }
  let data = null;
  try {
    data = await response.json();
  } catch (err) {
    data = null;
  }
  if (!response.ok) {
    const retry = Number(response.headers.get("Retry-After")) || null;
    const message = (data && data.message) || `The server answered ${response.status}.`;
    throw new ApiError(response.status, (data && data.error) || "http_" + response.status, message, retry);
  }
  return data;
}

// el("td", {class: "name"}, "text", childNode): children are text nodes or elements, never HTML.
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function showMessage(box, text, kind) {
  box.textContent = text || "";
  box.className = "message " + (kind || "error");
  box.hidden = !text;
}

function formatDate(unixSeconds) {
  if (!unixSeconds) return "never";
  const when = new Date(unixSeconds * 1000);
  const options = { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" };
  if (when.getFullYear() !== new Date().getFullYear()) options.year = "numeric";
  return when.toLocaleString(undefined, options);
}

// Only same-site paths may be redirect targets (no "//host", "/\\host" or "https://…").
function safeNext(value) {
  return typeof value === "string" && /^\/(?![\/\\])/.test(value) ? value : "/";
}
