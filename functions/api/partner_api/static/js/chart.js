// The chart page: history from /api/candles, then live bars over the WebSocket.
// State that tests read back is published as data-* attributes on #chart.
"use strict";

const TIMEFRAMES = [["1m", 60], ["2m", 120], ["3m", 180], ["5m", 300], ["10m", 600], ["15m", 900], ["30m", 1800], ["1h", 3600], ["4h", 14400]];
const VISIBLE_BARS = 160;
const MAX_QUICK_RETRIES = 5; // after this many failed reconnects in a row the state shows "offline"
const PING_MS = 4 * 60 * 1000;

const $ = (id) => document.getElementById(id);
const root = $("chart");
const state = {
  symbol: null,
  timeframe: 60,
  info: {}, // symbol -> {name, category, precision}
  candles: [],
  chart: null,
  series: null,
  ws: null,
  wsUrl: null,
  attempts: 0,
  reconnectTimer: null,
  connectedOnce: false,
  upstreamReady: null,
  barClose: null,
  clockOffset: 0,
  liveUpdates: 0,
  loadSeq: 0,
  subscribed: null, // "SYMBOL|timeframe" the open connection is subscribed to
};

function toGate() {
  location.replace("/gate.html?next=" + encodeURIComponent(location.pathname + location.search));
}

function notice(content) {
  const box = $("notice");
  box.replaceChildren();
  if (!content) {
    box.hidden = true;
    return;
  }
  box.append(...[].concat(content));
  box.hidden = false;
}

let toastTimer = null;
function toast(text) {
  const box = $("toast");
  showMessage(box, text, "error");
  box.classList.add("toast");
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (box.hidden = true), 6000);
}

// -- connection state ---------------------------------------------------------------------
function setConnection(kind, text) {
  const pill = $("connection");
  pill.className = "pill pill-" + kind;
  $("connection-text").textContent = text || kind;
  root.dataset.connection = kind;
}

// -- what the page shows ------------------------------------------------------------------
function fmtPrice(value) {
  const info = state.info[state.symbol];
  return Number(value).toFixed(info ? info.precision : 5);
}

function showLegend(bar) {
  const legend = $("legend");
  const label = TIMEFRAMES.find(([, s]) => s === state.timeframe);
  const parts = [el("span", { class: "sym" }, state.symbol || ""), el("span", { class: "tf" }, label ? label[0] : "")];
  if (bar) {
    const dir = bar.close >= bar.open ? "up" : "down";
    parts.push(
      el("span", {}, "O ", el("b", {}, fmtPrice(bar.open))),
      el("span", {}, "H ", el("b", {}, fmtPrice(bar.high))),
      el("span", {}, "L ", el("b", {}, fmtPrice(bar.low))),
      el("span", {}, "C ", el("b", { class: dir }, fmtPrice(bar.close))),
    );
  }
  legend.replaceChildren(...parts);
}

function publish() {
  const last = state.candles[state.candles.length - 1];
  root.dataset.symbol = state.symbol || "";
  root.dataset.timeframe = String(state.timeframe);
  root.dataset.candleCount = String(state.candles.length);
  root.dataset.lastTime = last ? String(last.time) : "";
  root.dataset.lastClose = last ? String(last.close) : "";
  root.dataset.liveUpdates = String(state.liveUpdates);
  $("count").textContent = `${state.candles.length.toLocaleString()} candles`;
  showLegend(last);
}

// -- countdown to the bar's close (server time, counted down locally) -------------------------
function setTiming(timing) {
  if (!timing || !timing.bar_close) return;
  state.clockOffset = timing.server_time - Date.now() / 1000;
  state.barClose = timing.bar_close;
  tick();
}

function tick() {
  const out = $("countdown-value");
  if (!state.barClose) return;
  const now = Date.now() / 1000 + state.clockOffset;
  let left = state.barClose - now;
  if (left < 0) {
    state.barClose += Math.ceil(-left / state.timeframe) * state.timeframe;
    left = state.barClose - now;
  }
  const s = Math.max(0, Math.floor(left));
  const hh = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(2, "0");
  const ss = String(s % 60).padStart(2, "0");
  out.textContent = hh ? `${hh}:${mm}:${ss}` : `${mm}:${ss}`;
  $("countdown").dataset.secondsLeft = String(s);
}

// -- history --------------------------------------------------------------------------------
function priceFormat() {
  const precision = state.info[state.symbol] ? state.info[state.symbol].precision : 5;
  return { type: "price", precision, minMove: Math.pow(10, -precision) };
}

async function loadHistory() {
  const seq = ++state.loadSeq;
  root.dataset.state = "loading";
  const query = new URLSearchParams({ symbol: state.symbol, timeframe: String(state.timeframe) });
  let data;
  try {
    data = await api("/api/candles?" + query);
  } catch (err) {
    if (seq !== state.loadSeq) return;
    if (err.status === 401) return toGate();
    state.candles = [];
    state.series.setData([]);
    root.dataset.state = err.status === 404 ? "empty" : "error";
    notice(err.status === 404 ? `No stored candles for ${state.symbol} yet.` : err.message);
    publish();
    return;
  }
  if (seq !== state.loadSeq) return; // a newer symbol or timeframe was picked meanwhile
  state.candles = data.candles;
  root.dataset.historyCount = String(data.count); // what /api/candles answered, for tests to compare
  root.dataset.historyLastTime = data.candles.length ? String(data.candles[data.candles.length - 1].time) : "";
  state.series.applyOptions({ priceFormat: priceFormat() });
  state.series.setData(state.candles);
  const n = state.candles.length;
  const visible = Math.max(40, Math.min(VISIBLE_BARS, Math.round(root.clientWidth / 7))); // ~7 px a bar
  state.chart.timeScale().setVisibleLogicalRange({ from: Math.max(0, n - visible), to: n + 4 });
  setTiming(data.timing);
  notice(null);
  root.dataset.state = "ready";
  publish();
}

// -- live -------------------------------------------------------------------------------------
function send(message) {
  if (!state.ws || state.ws.readyState !== WebSocket.OPEN) return false;
  state.ws.send(JSON.stringify(message));
  return true;
}

// Subscribes the open connection to what the page shows, once per connection and choice.
function subscribe() {
  const wanted = `${state.symbol}|${state.timeframe}`;
  if (state.subscribed === wanted) return;
  if (send({ type: "subscribe", symbol: state.symbol, timeframe: state.timeframe })) state.subscribed = wanted;
}

function forCurrent(msg) {
  return (msg.symbol === undefined || msg.symbol === state.symbol) &&
    (msg.timeframe === undefined || Number(msg.timeframe) === state.timeframe);
}

function applyBar(candle) {
  const last = state.candles[state.candles.length - 1];
  if (last && candle.time < last.time) return false; // older than what we show: history has it
  if (last && candle.time === last.time) state.candles[state.candles.length - 1] = candle;
  else state.candles.push(candle);
  state.series.update(candle);
  return true;
}

function onMessage(msg) {
  if (!msg || typeof msg !== "object") return;
  switch (msg.type) {
    case "status":
      state.upstreamReady = msg.upstream_ready;
      $("upstream").textContent = msg.upstream_ready === false ? "upstream: waiting for data" : "";
      break;
    case "history":
      if (!forCurrent(msg)) return;
      for (const candle of msg.candles || []) applyBar(candle);
      setTiming(msg.timing);
      publish();
      break;
    case "bar":
      if (!forCurrent(msg) || !msg.candle) return;
      if (applyBar(msg.candle)) {
        state.liveUpdates += 1;
        root.dataset.lastBarClosed = String(Boolean(msg.closed));
        publish();
      }
      break;
    case "timing":
      if (forCurrent(msg)) setTiming(msg.timing || msg);
      break;
    case "error":
      toast(msg.message || "The live feed reported an error.");
      break;
  }
}

async function refreshLiveUrl() {
  try {
    const status = await api("/api/live/status");
    state.wsUrl = status.ws_url;
  } catch (err) {
    if (err.status === 401) toGate();
  }
}

function connect() {
  clearTimeout(state.reconnectTimer);
  if (!state.wsUrl) {
    setConnection("offline", "offline · no live feed");
    return;
  }
  let ws;
  try {
    ws = new WebSocket(state.wsUrl);
  } catch (err) {
    scheduleReconnect();
    return;
  }
  state.ws = ws;
  ws.onopen = () => {
    state.attempts = 0;
    state.connectedOnce = true;
    setConnection("live", "live");
    state.subscribed = null;
    subscribe();
  };
  ws.onmessage = (event) => {
    try {
      onMessage(JSON.parse(event.data));
    } catch (err) {
      /* a malformed frame is ignored; the next one may be fine */
    }
  };
  ws.onclose = (event) => {
    if (state.ws !== ws) return; // replaced on purpose
    state.ws = null;
    root.dataset.wsCloseCode = String(event.code);
    if (event.code === 4401) {
      // The key was refused: if the HTTP API refuses it too, the gate takes over.
      refreshLiveUrl();
    }
    scheduleReconnect();
  };
}

function scheduleReconnect() {
  clearTimeout(state.reconnectTimer);
  state.attempts += 1;
  const base = Math.min(30000, 1000 * 2 ** Math.min(state.attempts - 1, 5));
  const delay = Math.round(base * (0.75 + Math.random() * 0.5)); // jitter: clients don't return in lockstep
  const offline = !navigator.onLine || state.attempts > MAX_QUICK_RETRIES;
  setConnection(offline ? "offline" : "reconnecting", offline ? "offline · retrying" : "reconnecting…");
  state.reconnectTimer = setTimeout(reconnectNow, delay);
}

async function reconnectNow() {
  clearTimeout(state.reconnectTimer);
  if (state.ws) return;
  await refreshLiveUrl();
  if (state.connectedOnce) await loadHistory(); // fill whatever was missed while away
  connect();
}

// -- pickers ----------------------------------------------------------------------------------
function buildSymbolPicker(catalog) {
  const select = $("symbol");
  select.replaceChildren();
  for (const [category, symbols] of Object.entries(catalog.categories)) {
    const group = el("optgroup", { label: category.charAt(0).toUpperCase() + category.slice(1) });
    for (const symbol of symbols) group.append(el("option", { value: symbol }, symbol));
    select.append(group);
  }
  select.disabled = false;
  select.addEventListener("change", () => choose(select.value, state.timeframe));
}

function buildTimeframePicker() {
  const box = $("timeframes");
  for (const [label, seconds] of TIMEFRAMES) {
    box.append(el("button", { type: "button", "data-tf": seconds, "aria-pressed": "false", onclick: () => choose(state.symbol, seconds) }, label));
  }
}

function choose(symbol, timeframe) {
  const old = { symbol: state.symbol, timeframe: state.timeframe };
  if (old.symbol === symbol && old.timeframe === timeframe && state.candles.length) return;
  if (old.symbol && send({ type: "unsubscribe", symbol: old.symbol, timeframe: old.timeframe })) state.subscribed = null;
  state.symbol = symbol;
  state.timeframe = timeframe;
  state.barClose = null;
  $("symbol").value = symbol;
  for (const button of $("timeframes").children) {
    button.setAttribute("aria-pressed", String(Number(button.dataset.tf) === timeframe));
  }
  const url = new URL(location.href);
  url.searchParams.set("symbol", symbol);
  url.searchParams.set("tf", String(timeframe));
  history.replaceState(null, "", url);
  localStorage.setItem("tradowix.chart", JSON.stringify({ symbol, timeframe }));
  document.title = `${symbol} · Tradowix`;
  publish();
  loadHistory().then(subscribe);
}

function createChart() {
  const L = window.LightweightCharts;
  state.chart = L.createChart(root, {
    autoSize: true,
    layout: { background: { type: "solid", color: "#0b0f17" }, textColor: "#8b95a7", fontFamily: getComputedStyle(document.body).fontFamily },
    grid: { vertLines: { color: "rgba(139,149,167,0.07)" }, horzLines: { color: "rgba(139,149,167,0.07)" } },
    rightPriceScale: { borderColor: "#222b3d" },
    timeScale: { borderColor: "#222b3d", timeVisible: true, secondsVisible: false, rightOffset: 4 },
    crosshair: { mode: L.CrosshairMode.Normal },
  });
  state.series = state.chart.addSeries(L.CandlestickSeries, {
    upColor: "#26a69a", downColor: "#ef5350", borderVisible: false, wickUpColor: "#26a69a", wickDownColor: "#ef5350",
  });
  state.chart.subscribeCrosshairMove((param) => {
    const bar = param && param.seriesData ? param.seriesData.get(state.series) : null;
    showLegend(bar || state.candles[state.candles.length - 1]);
  });
}

// -- start ------------------------------------------------------------------------------------
async function start() {
  if (!window.LightweightCharts) {
    root.dataset.state = "error";
    notice("The chart library is missing on this server. Run `npm ci` (or the set-up command) before `sam build`.");
    setConnection("offline", "offline");
    return;
  }
  let catalog;
  try {
    catalog = await api("/api/symbols");
  } catch (err) {
    if (err.status === 401) return toGate();
    root.dataset.state = "error";
    notice(err.message);
    return;
  }
  if (!catalog.symbols.length) {
    root.dataset.state = "empty";
    notice("This key may not read any market. Ask the owner to allow some.");
    return;
  }
  for (const info of catalog.symbols) state.info[info.symbol] = info;
  createChart();
  buildSymbolPicker(catalog);
  buildTimeframePicker();
  const params = new URLSearchParams(location.search);
  let saved = {};
  try {
    saved = JSON.parse(localStorage.getItem("tradowix.chart") || "{}");
  } catch (err) {
    saved = {};
  }
  const wanted = params.get("symbol") || saved.symbol;
  const symbol = state.info[wanted] ? wanted : catalog.symbols[0].symbol;
  const tf = Number(params.get("tf") || saved.timeframe);
  const timeframe = TIMEFRAMES.some(([, s]) => s === tf) ? tf : 60;
  await refreshLiveUrl();
  choose(symbol, timeframe);
  connect();
  setInterval(tick, 250);
  setInterval(() => send({ type: "ping" }), PING_MS);
  window.addEventListener("online", () => { state.attempts = 0; reconnectNow(); });
  window.addEventListener("offline", () => setConnection("offline", "offline"));
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && !state.ws) reconnectNow();
  });
}

start();
