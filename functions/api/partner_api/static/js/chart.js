// The chart page: history from /api/candles, then live bars over the WebSocket.
// State that tests read back is published as data-* attributes on #chart.
"use strict";

const TIMEFRAMES = [["1m", 60], ["2m", 120], ["3m", 180], ["5m", 300], ["10m", 600], ["15m", 900], ["30m", 1800], ["1h", 3600], ["4h", 14400], ["1d", 86400]];
const VISIBLE_BARS = 160;
const RIGHT_OFFSET_BARS = 4; // empty bars kept right of the newest one
const MAX_QUICK_RETRIES = 5; // after this many failed reconnects in a row the state shows "offline"
const PING_MS = 4 * 60 * 1000;
const STALE_AFTER_MS = 3000; // a live feed lost for longer than this marks the chart stale
const WATCHLIST_REFRESH_MS = 60 * 1000;
const SETTINGS_KEY = "tradowix.chart.settings";
const LABELLED_SIGNALS = 1; // the newest signal shows its confidence as text
const CHOICE_KEY = "tradowix.chart";
// The key stopped working: reconnecting cannot help, the gate can say why.
const AUTH_CODES = new Set(["key_disabled", "invalid_key", "missing_key", "session_expired", "invalid_session"]);
const DEFAULT_SETTINGS = {
  volume: true, sma: false, smaPeriod: 20, ema: false, emaPeriod: 50, bb: false, rsi: false,
  signals: false, minConfidence: 0.3, tz: "utc",
};
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

const $ = (id) => document.getElementById(id);
const root = $("chart");
const state = {
  symbol: null,
  timeframe: 60,
  info: {}, // symbol -> {name, category, precision}
  candles: [],
  lastClosed: true, // whether the newest candle is closed (signals are decided on closed bars only)
  cache: new Map(), // "SYMBOL|tf" -> {candles, lastClosed}: shown (marked stale) when a reload fails
  chart: null,
  series: null,
  indicatorSeries: {}, // name -> series
  markers: null,
  signalByTime: new Map(), // bar time -> the strategy's signal at that bar's close
  lastSignal: null,
  ws: null,
  wsUrl: null,
  attempts: 0,
  reconnectTimer: null,
  connectedOnce: false,
  authLost: false,
  upstreamReady: null,
  barClose: null,
  clockOffset: 0,
  countdownText: "--:--",
  liveUpdates: 0,
  loadSeq: 0,
  subscribed: null, // "SYMBOL|timeframe" the open connection is subscribed to
  lastUpdate: null, // ms (browser clock) when data last arrived
  historyFailed: null, // message of the last failed history load, or null
  offlineSince: null, // ms since the live feed was lost
  staleTimer: null,
  watch: {}, // symbol -> {price, reference}
  drawPending: false,
};
let settings = loadSettings();

function loadSettings() {
  try {
    return { ...DEFAULT_SETTINGS, ...JSON.parse(localStorage.getItem(SETTINGS_KEY) || "{}") };
  } catch (err) {
    return { ...DEFAULT_SETTINGS };
  }
}

function saveSettings() {
  localStorage.setItem(SETTINGS_KEY, JSON.stringify(settings));
}

function toGate(reason) {
  if (state.leaving) return; // one navigation, not one per failed request
  state.leaving = true;
  const query = new URLSearchParams({ next: location.pathname + location.search });
  if (reason) query.set("reason", reason);
  location.replace("/gate.html?" + query);
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

// -- time, in the zone the partner picked ------------------------------------------------------
function parts(unixSeconds) {
  const d = new Date(unixSeconds * 1000);
  if (settings.tz === "local") {
    return { y: d.getFullYear(), mo: d.getMonth(), d: d.getDate(), h: d.getHours(), mi: d.getMinutes(), s: d.getSeconds() };
  }
  return { y: d.getUTCFullYear(), mo: d.getUTCMonth(), d: d.getUTCDate(), h: d.getUTCHours(), mi: d.getUTCMinutes(), s: d.getUTCSeconds() };
}
const two = (n) => String(n).padStart(2, "0");
function fmtClock(unixSeconds, seconds) {
  const p = parts(unixSeconds);
  return `${two(p.h)}:${two(p.mi)}` + (seconds ? `:${two(p.s)}` : "");
}
function fmtDateTime(unixSeconds) {
  const p = parts(unixSeconds);
  return `${p.d} ${MONTHS[p.mo]} ${p.y} ${two(p.h)}:${two(p.mi)}`;
}
function zoneName() {
  return settings.tz === "local" ? "local time" : "UTC";
}
function tickMark(time, type) {
  const p = parts(time);
  switch (type) {
    case 0: return String(p.y); // TickMarkType.Year
    case 1: return MONTHS[p.mo]; // Month
    case 2: return `${p.d} ${MONTHS[p.mo]}`; // DayOfMonth
    case 4: return `${two(p.h)}:${two(p.mi)}:${two(p.s)}`; // TimeWithSeconds
    default: return `${two(p.h)}:${two(p.mi)}`; // Time
  }
}

// -- connection state ---------------------------------------------------------------------
function setConnection(kind, text) {
  const pill = $("connection");
  pill.className = "pill pill-" + kind;
  $("connection-text").textContent = text || kind;
  root.dataset.connection = kind;
  if (kind === "live") {
    state.offlineSince = null;
  } else if (state.offlineSince === null && state.connectedOnce) {
    state.offlineSince = Date.now();
    clearTimeout(state.staleTimer);
    state.staleTimer = setTimeout(updateStale, STALE_AFTER_MS + 50);
  }
  updateStale();
  renderCountdown();
}

// The chart keeps what it has through an outage and says how old it is.
function updateStale() {
  const lost = state.offlineSince !== null && Date.now() - state.offlineSince >= STALE_AFTER_MS;
  const stale = Boolean(state.candles.length) && (state.historyFailed !== null || lost);
  root.dataset.stale = String(stale);
  const banner = $("stale");
  if (!stale) {
    banner.hidden = true;
    return;
  }
  const when = state.lastUpdate ? `${fmtClock(state.lastUpdate / 1000, true)} ${zoneName()}` : "unknown";
  const why = state.historyFailed || (state.authLost ? "the live feed refused the key" : "the live feed is disconnected");
  $("stale-text").textContent = `Not up to date: last update ${when} (${why}).`;
  banner.hidden = false;
}

// -- what the page shows ------------------------------------------------------------------
function fmtPrice(value) {
  const info = state.info[state.symbol];
  return Number(value).toFixed(info ? info.precision : 5);
}

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

const IND_COLORS = { sma: "#f0b429", ema: "#b07cff", bb: "#4f8cff", rsi: "#e879c6" };

function showLegend(bar) {
  const legend = $("legend");
  const label = TIMEFRAMES.find(([, s]) => s === state.timeframe);
  const parts = [el("span", { class: "sym" }, state.symbol || ""), el("span", { class: "tf" }, label ? label[0] : "")];
  if (bar) {
    const dir = bar.close >= bar.open ? "up" : "down";
    parts.push(
      el("span", { class: "when" }, fmtClock(bar.time)),
      el("span", {}, "O ", el("b", {}, fmtPrice(bar.open))),
      el("span", {}, "H ", el("b", {}, fmtPrice(bar.high))),
      el("span", {}, "L ", el("b", {}, fmtPrice(bar.low))),
      el("span", {}, "C ", el("b", { class: dir }, fmtPrice(bar.close))),
    );
    const full = state.candles.find((c) => c.time === bar.time);
    if (settings.volume) {
      parts.push(el("span", { class: "vol" }, "Vol ", el("b", {}, full && typeof full.volume === "number" ? full.volume.toLocaleString() : "n/a")));
    }
  }
  const active = [];
  if (settings.sma) active.push(["sma", `SMA ${settings.smaPeriod}`]);
  if (settings.ema) active.push(["ema", `EMA ${settings.emaPeriod}`]);
  if (settings.bb) active.push(["bb", "BB 20, 2"]);
  if (settings.rsi) active.push(["rsi", "RSI 14"]);
  if (settings.signals) {
    const here = bar && state.signalByTime.get(bar.time);
    const last = state.lastSignal;
    const pct = (s) => `${s.direction} ${Math.round(s.confidence * 100)}%`;
    active.push(["signals", here ? `Signal at this bar: ${pct(here)}` : last ? `Last signal ${pct(last)} at ${fmtClock(last.time)}` : "Signals: none yet"]);
  }
  if (active.length) {
    parts.push(el("span", { class: "ind" }, active.map(([k, text]) => el("span", { style: `--swatch: ${IND_COLORS[k] || "var(--muted)"}` }, text))));
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
  root.dataset.tz = settings.tz;
  $("count").textContent = `${state.candles.length.toLocaleString()} candles`;
  showLegend(last);
  updateWatchPrice(last);
  updateStale();
}

// -- countdown to the bar's close (server time, counted down locally; frozen while offline) ----
function setTiming(timing) {
  if (!timing || !timing.bar_close) return;
  state.clockOffset = timing.server_time - Date.now() / 1000;
  state.barClose = timing.bar_close;
  tick(true);
}

function frozen() {
  return root.dataset.connection !== "live";
}

// `force`: new timing from the server. While offline it only fills a countdown never shown yet.
function tick(force) {
  const shown = state.countdownText !== "--:--";
  if (!state.barClose || (frozen() && !(force && !shown))) return renderCountdown();
  const now = Date.now() / 1000 + state.clockOffset;
  let left = state.barClose - now;
  if (left < 0) {
    state.barClose += Math.ceil(-left / state.timeframe) * state.timeframe;
    left = state.barClose - now;
  }
  const s = Math.max(0, Math.floor(left));
  const hh = Math.floor(s / 3600);
  const mm = two(Math.floor((s % 3600) / 60));
  const ss = two(s % 60);
  state.countdownText = hh ? `${hh}:${mm}:${ss}` : `${mm}:${ss}`;
  $("countdown").dataset.secondsLeft = String(s);
  renderCountdown();
}

function renderCountdown() {
  const box = $("countdown");
  box.dataset.frozen = String(frozen());
  box.querySelector("small").textContent = frozen() ? "paused" : "closes in";
  box.title = frozen() ? "Paused while the live feed is disconnected" : "Time left until the current bar closes";
  $("countdown-value").textContent = state.countdownText;
  placeAxisCountdown();
}

// The countdown also sits on the price axis, right under the last price's label.
function placeAxisCountdown() {
  const box = $("axis-countdown");
  const last = state.candles[state.candles.length - 1];
  if (!state.series || !last || !state.barClose) {
    box.hidden = true;
    return;
  }
  const y = state.series.priceToCoordinate(last.close);
  const scaleWidth = state.chart.priceScale("right").width();
  const paneHeight = state.chart.paneSize(0).height;
  if (y === null || y < 0 || y > paneHeight - 22 || !scaleWidth) {
    box.hidden = true;
    return;
  }
  box.textContent = state.countdownText;
  box.className = "axis-countdown " + (last.close >= last.open ? "up" : "down");
  box.style.left = `${root.clientWidth - scaleWidth}px`;
  box.style.width = `${scaleWidth}px`;
  box.style.top = `${Math.round(y + 8)}px`; // the price label is ~16 px tall, centred on y
  box.dataset.frozen = String(frozen());
  box.hidden = false;
}

// The legend never runs under the price scale (phones are narrow).
function layout() {
  if (!state.chart) return;
  const scaleWidth = state.chart.priceScale("right").width();
  $("legend").style.maxWidth = `${Math.max(120, root.clientWidth - scaleWidth - 24)}px`;
  placeAxisCountdown();
}

// -- history --------------------------------------------------------------------------------
function priceFormat() {
  const precision = state.info[state.symbol] ? state.info[state.symbol].precision : 5;
  return { type: "price", precision, minMove: Math.pow(10, -precision) };
}

function choiceKey() {
  return `${state.symbol}|${state.timeframe}`;
}

// Bars newer than or equal to the first of `bars` are replaced by `bars`; older ones stay.
function mergeBars(bars) {
  if (!bars.length) return;
  const first = bars[0].time;
  let i = state.candles.length;
  while (i > 0 && state.candles[i - 1].time >= first) i--;
  const tail = new Map(state.candles.slice(i).map((c) => [c.time, c]));
  for (const bar of bars) tail.set(bar.time, bar);
  state.candles = state.candles.slice(0, i).concat([...tail.values()].sort((a, b) => a.time - b.time));
}

function showCandles(resetView) {
  // The volume pane exists only while the bars carry volume (bars stored before it have none).
  const hasVolume = state.candles.some((c) => typeof c.volume === "number");
  if (hasVolume !== Boolean(state.hasVolume)) {
    state.hasVolume = hasVolume;
    buildIndicators();
  }
  state.series.applyOptions({ priceFormat: priceFormat() });
  state.series.setData(state.candles.map(({ time, open, high, low, close }) => ({ time, open, high, low, close })));
  if (resetView) {
    const n = state.candles.length;
    const visible = Math.max(40, Math.min(VISIBLE_BARS, Math.round(root.clientWidth / 7))); // ~7 px a bar
    state.chart.timeScale().setVisibleLogicalRange({ from: Math.max(0, n - visible), to: n + RIGHT_OFFSET_BARS });
  }
  drawIndicators();
}

// Loads the chart's history. With candles already shown for this choice (a reconnect, "retry
// now"), only what is missing is asked for: bars from the newest one we have, merged in.
async function loadHistory() {
  const seq = ++state.loadSeq;
  const key = choiceKey();
  const refresh = state.loadedKey === key && state.candles.length > 0;
  if (!refresh) root.dataset.state = "loading";
  const query = new URLSearchParams({ symbol: state.symbol, timeframe: String(state.timeframe) });
  if (refresh) query.set("start", String(state.candles[state.candles.length - 1].time));
  let data;
  try {
    data = await api("/api/candles?" + query);
  } catch (err) {
    if (seq !== state.loadSeq) return;
    if (err.status === 401) return toGate(err.code);
    if (err.status === 404 && !refresh) {
      state.candles = [];
      showCandles(false);
      root.dataset.state = "empty";
      notice(`No stored candles for ${state.symbol} yet.`);
      publish();
      return;
    }
    failedHistory(err, refresh, key);
    return;
  }
  if (seq !== state.loadSeq) return; // a newer symbol or timeframe was picked meanwhile
  if (refresh) {
    mergeBars(data.candles);
  } else {
    state.candles = data.candles;
  }
  if (data.candles.length) state.lastClosed = data.last_closed !== false;
  state.loadedKey = key;
  state.historyFailed = null;
  state.lastUpdate = Date.now();
  root.dataset.historyCount = String(data.count); // what /api/candles answered, for tests to compare
  root.dataset.historyLastTime = data.candles.length ? String(data.candles[data.candles.length - 1].time) : "";
  showCandles(!refresh);
  setTiming(data.timing);
  notice(null);
  root.dataset.state = "ready";
  remember();
  publish();
}

function failedHistory(err, refresh, key) {
  const why = err.status === 0 ? "the server cannot be reached" : `the server answered: ${err.message}`;
  if (!refresh) {
    const cached = state.cache.get(key);
    if (cached) {
      state.candles = cached.candles;
      state.lastClosed = cached.lastClosed;
      state.lastUpdate = cached.at;
      state.loadedKey = key;
      showCandles(true);
    }
  }
  if (state.candles.length && state.loadedKey === key) {
    state.historyFailed = why;
    notice(null);
    root.dataset.state = "ready";
  } else {
    state.candles = [];
    showCandles(false);
    root.dataset.state = "error";
    notice([el("p", {}, `Cannot load ${state.symbol}: ${why}.`), el("button", { class: "btn", type: "button", onclick: retryNow }, "Retry now")]);
  }
  publish();
}

function remember() {
  state.cache.delete(choiceKey());
  state.cache.set(choiceKey(), { candles: state.candles, lastClosed: state.lastClosed, at: state.lastUpdate });
  while (state.cache.size > 8) state.cache.delete(state.cache.keys().next().value);
}

// -- indicators, volume and the strategy's signals -------------------------------------------
function closedCandles() {
  return state.lastClosed ? state.candles : state.candles.slice(0, -1);
}

function wantedSeries() {
  const L = window.LightweightCharts;
  const wanted = [];
  let pane = 1;
  if (settings.volume && state.hasVolume) wanted.push(["volume", L.HistogramSeries, { priceFormat: { type: "volume" }, priceLineVisible: false, lastValueVisible: false, title: "" }, pane++]);
  if (settings.sma) wanted.push(["sma", L.LineSeries, { color: IND_COLORS.sma, lineWidth: 1.5, priceLineVisible: false, lastValueVisible: false, crosshairMarkerVisible: false }, 0]);
  if (settings.ema) wanted.push(["ema", L.LineSeries, { color: IND_COLORS.ema, lineWidth: 1.5, priceLineVisible: false, lastValueVisible: false, crosshairMarkerVisible: false }, 0]);
  if (settings.bb) {
    for (const part of ["bbUpper", "bbMiddle", "bbLower"]) {
      wanted.push([part, L.LineSeries, { color: IND_COLORS.bb, lineWidth: 1, lineStyle: part === "bbMiddle" ? 2 : 0, priceLineVisible: false, lastValueVisible: false, crosshairMarkerVisible: false }, 0]);
    }
  }
  if (settings.rsi) wanted.push(["rsi", L.LineSeries, { color: IND_COLORS.rsi, lineWidth: 1.5, priceLineVisible: false, lastValueVisible: true, autoscaleInfoProvider: () => ({ priceRange: { minValue: 0, maxValue: 100 } }) }, pane++]);
  return wanted;
}

// Rebuilds the indicator series after a settings change (panes follow: main, volume, RSI).
function buildIndicators() {
  for (const series of Object.values(state.indicatorSeries)) state.chart.removeSeries(series);
  state.indicatorSeries = {};
  const wanted = wantedSeries();
  for (const [name, kind, options, pane] of wanted) {
    state.indicatorSeries[name] = state.chart.addSeries(kind, options, pane);
  }
  const panes = state.chart.panes();
  for (let i = panes.length - 1; i > 0; i--) {
    if (!panes[i].getSeries().length) state.chart.removePane(i);
  }
  state.chart.panes().forEach((pane, i) => pane.setStretchFactor(i === 0 ? 1 : 0.28));
  if (state.indicatorSeries.rsi) {
    for (const level of [70, 30]) {
      state.indicatorSeries.rsi.createPriceLine({ price: level, color: cssVar("--muted"), lineWidth: 1, lineStyle: 2, axisLabelVisible: false });
    }
  }
  root.dataset.indicators = wanted.map(([name]) => name).join(",");
  root.dataset.panes = String(state.chart.panes().length);
  drawIndicators();
  layout();
}

function lineData(values) {
  const out = [];
  state.candles.forEach((c, i) => {
    if (values[i] !== null) out.push({ time: c.time, value: values[i] });
  });
  return out;
}

function drawIndicators() {
  if (!state.chart) return;
  const s = state.indicatorSeries;
  const closes = state.candles.map((c) => c.close);
  if (s.volume) {
    const up = cssVar("--up");
    const down = cssVar("--down");
    const bars = state.candles.filter((c) => typeof c.volume === "number");
    s.volume.setData(bars.map((c) => ({ time: c.time, value: c.volume, color: (c.close >= c.open ? up : down) + "88" })));
    root.dataset.volumeBars = String(bars.length);
  }
  if (s.sma) s.sma.setData(lineData(TradowixIndicators.sma(closes, settings.smaPeriod)));
  if (s.ema) s.ema.setData(lineData(TradowixIndicators.ema(closes, settings.emaPeriod)));
  if (s.bbUpper) {
    const bands = TradowixIndicators.bollinger(closes);
    s.bbUpper.setData(lineData(bands.map((b) => b && b.upper)));
    s.bbMiddle.setData(lineData(bands.map((b) => b && b.middle)));
    s.bbLower.setData(lineData(bands.map((b) => b && b.lower)));
  }
  if (s.rsi) s.rsi.setData(lineData(TradowixIndicators.rsi(closes)));
  drawSignals();
}

function drawSignals() {
  const L = window.LightweightCharts;
  if (!settings.signals) {
    if (state.markers) state.markers.setMarkers([]);
    state.signalByTime = new Map();
    state.lastSignal = null;
    root.dataset.signalMarkers = "0";
    return;
  }
  const signals = TradowixIndicators.signals(closedCandles()).filter(
    (s) => s && s.direction && s.confidence >= settings.minConfidence,
  );
  const up = cssVar("--up");
  const down = cssVar("--down");
  // The arrow's size shows the confidence; the newest few carry it as text, every one in the
  // legend when the crosshair is on its bar (text on all of them would hide the candles).
  const markers = signals.map((s, i) => ({
    time: s.time,
    position: s.direction === "CALL" ? "belowBar" : "aboveBar",
    shape: s.direction === "CALL" ? "arrowUp" : "arrowDown",
    color: s.direction === "CALL" ? up : down,
    size: 0.6 + 1.4 * s.confidence,
    text: i >= signals.length - LABELLED_SIGNALS ? `${s.direction} ${Math.round(s.confidence * 100)}%` : "",
  }));
  if (!state.markers) state.markers = L.createSeriesMarkers(state.series, markers);
  else state.markers.setMarkers(markers);
  state.signalByTime = new Map(signals.map((s) => [s.time, s]));
  state.lastSignal = signals[signals.length - 1] || null;
  root.dataset.signalMarkers = String(markers.length);
}

// Live updates redraw at most once a frame.
function scheduleDraw() {
  if (state.drawPending) return;
  state.drawPending = true;
  requestAnimationFrame(() => {
    state.drawPending = false;
    drawIndicators();
    publish();
  });
}

function buildIndicatorMenu() {
  const button = $("indicators-button");
  const panel = $("indicators-panel");
  const boxes = { volume: "ind-volume", sma: "ind-sma", ema: "ind-ema", bb: "ind-bb", rsi: "ind-rsi", signals: "ind-signals" };
  const numbers = { smaPeriod: ["ind-sma-period", 2, 500, true], emaPeriod: ["ind-ema-period", 2, 500, true], minConfidence: ["ind-signals-min", 0, 1, false] };
  for (const [name, id] of Object.entries(boxes)) $(id).checked = Boolean(settings[name]);
  for (const [name, [id]] of Object.entries(numbers)) $(id).value = String(settings[name]);
  panel.addEventListener("change", () => {
    for (const [name, id] of Object.entries(boxes)) settings[name] = $(id).checked;
    for (const [name, [id, min, max, integer]] of Object.entries(numbers)) {
      let value = Number($(id).value);
      if (!Number.isFinite(value)) value = DEFAULT_SETTINGS[name];
      value = Math.min(max, Math.max(min, integer ? Math.round(value) : value));
      settings[name] = value;
      $(id).value = String(value);
    }
    saveSettings();
    buildIndicators();
    publish();
  });
  const open = (show) => {
    panel.hidden = !show;
    button.setAttribute("aria-expanded", String(show));
  };
  button.addEventListener("click", () => open(panel.hidden));
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !panel.hidden) {
      open(false);
      button.focus();
    }
  });
  document.addEventListener("click", (event) => {
    if (!panel.hidden && !panel.contains(event.target) && event.target !== button) open(false);
  });
}

// -- live -------------------------------------------------------------------------------------
function send(message) {
  if (!state.ws || state.ws.readyState !== WebSocket.OPEN) return false;
  state.ws.send(JSON.stringify(message));
  return true;
}

// Subscribes the open connection to what the page shows, once per connection and choice.
function subscribe() {
  const wanted = choiceKey();
  if (state.subscribed === wanted) return;
  if (send({ type: "subscribe", symbol: state.symbol, timeframe: state.timeframe })) state.subscribed = wanted;
}

function forCurrent(msg) {
  return (msg.symbol === undefined || msg.symbol === state.symbol) &&
    (msg.timeframe === undefined || Number(msg.timeframe) === state.timeframe);
}

// A live bar: the forming bar moves, or the next bar starts at once (its first update).
function applyBar(candle, closed) {
  const last = state.candles[state.candles.length - 1];
  if (last && candle.time < last.time) return false; // older than what we show: history has it
  if (last && candle.time === last.time) state.candles[state.candles.length - 1] = candle;
  else state.candles.push(candle);
  state.lastClosed = Boolean(closed);
  if (!state.hasVolume && typeof candle.volume === "number") {
    state.hasVolume = true;
    buildIndicators();
  }
  const { time, open, high, low, close } = candle;
  state.series.update({ time, open, high, low, close });
  state.lastUpdate = Date.now();
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
      if (!forCurrent(msg) || !state.series) return;
      if ((msg.candles || []).length) {
        mergeBars(msg.candles);
        state.lastUpdate = Date.now();
        showCandles(false);
      }
      setTiming(msg.timing);
      publish();
      break;
    case "bar":
      if (!forCurrent(msg) || !msg.candle || !state.series) return;
      if (applyBar(msg.candle, msg.closed)) {
        state.liveUpdates += 1;
        root.dataset.lastBarClosed = String(Boolean(msg.closed));
        publish();
        scheduleDraw();
      }
      break;
    case "timing":
      if (forCurrent(msg)) setTiming(msg.timing || msg);
      break;
    case "error":
      if (AUTH_CODES.has(msg.error)) return keyRefused(msg.error);
      toast(msg.message || "The live feed reported an error.");
      break;
  }
}

async function refreshLiveUrl() {
  try {
    const status = await api("/api/live/status");
    state.wsUrl = status.ws_url;
    return true;
  } catch (err) {
    if (err.status === 401) toGate(err.code);
    return false;
  }
}

function connect() {
  clearTimeout(state.reconnectTimer);
  if (state.authLost) return;
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
    if (event.code === 4401) return keyRefused(event.reason || "invalid_key");
    if (!state.authLost) scheduleReconnect();
  };
}

// The server refused the key (close 4401 or an error naming it): no reconnect loop. If the HTTP
// API refuses it too, the gate says why; otherwise the partner may retry by hand.
async function keyRefused(code) {
  if (state.authLost) return; // already on it (a close often follows the error message)
  state.authLost = true;
  clearTimeout(state.reconnectTimer);
  if (state.ws) {
    const ws = state.ws;
    state.ws = null;
    ws.close();
  }
  root.dataset.authLost = code;
  setConnection("offline", "offline · key refused");
  // The HTTP API may still accept the key for its cache bound (KEY_CACHE_SECONDS): ask again a
  // few times before leaving the partner on a chart marked stale, with "retry now".
  for (const wait of [0, 1000, 2000, 4000, 8000, 15000, 30000]) {
    await new Promise((resolve) => setTimeout(resolve, wait));
    if (!state.authLost) return; // "retry now" took over
    try {
      await api("/api/auth/verify", { method: "POST", body: {} });
    } catch (err) {
      if (err.status === 401) return toGate(err.code || code);
    }
    updateStale();
  }
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
  if (state.ws || state.authLost) return;
  await refreshLiveUrl();
  if (state.connectedOnce || state.historyFailed) await loadHistory(); // fill whatever was missed while away
  connect();
}

// "Retry now": everything at once, whatever the backoff says.
async function retryNow() {
  state.attempts = 0;
  state.authLost = false;
  const button = $("retry-now");
  button.disabled = true;
  try {
    if (state.ws) {
      await loadHistory();
    } else {
      await reconnectNow();
    }
  } finally {
    button.disabled = false;
  }
}

// -- watchlist ----------------------------------------------------------------------------------
function buildWatchlist(catalog) {
  const list = $("watchlist-items");
  list.replaceChildren(
    ...catalog.symbols.map((info) =>
      el("li", {},
        el("button", { type: "button", "data-symbol": info.symbol, onclick: () => { choose(info.symbol, state.timeframe); toggleWatchlist(false); } },
          el("span", { class: "w-sym" }, info.symbol),
          el("span", { class: "w-price" }, "…"),
          el("span", { class: "w-name" }, info.name || info.category || ""),
          el("span", { class: "w-change" }, ""),
        ),
      ),
    ),
  );
  $("watchlist-toggle").addEventListener("click", () => toggleWatchlist(!$("watchlist").classList.contains("open")));
  $("watchlist-close").addEventListener("click", () => toggleWatchlist(false));
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && $("watchlist").classList.contains("open")) {
      toggleWatchlist(false);
      $("watchlist-toggle").focus();
    }
  });
}

function toggleWatchlist(open) {
  $("watchlist").classList.toggle("open", open);
  $("watchlist-toggle").setAttribute("aria-expanded", String(open));
}

function showWatch(symbol) {
  const button = document.querySelector(`#watchlist-items button[data-symbol="${CSS.escape(symbol)}"]`);
  const w = state.watch[symbol];
  if (!button || !w) return;
  const digits = state.info[symbol] ? state.info[symbol].precision : 5;
  button.querySelector(".w-price").textContent = Number(w.price).toFixed(digits);
  const change = w.reference ? ((w.price - w.reference) / w.reference) * 100 : 0;
  const box = button.querySelector(".w-change");
  box.textContent = `${change >= 0 ? "+" : ""}${change.toFixed(2)}%`;
  box.className = "w-change " + (change >= 0 ? "up" : "down");
  button.dataset.price = String(w.price);
  button.dataset.change = change.toFixed(4);
}

// Last price and the change since the previous day's close, from two daily bars per symbol.
async function refreshWatchlist() {
  for (const symbol of Object.keys(state.info)) {
    try {
      const data = await api("/api/candles?" + new URLSearchParams({ symbol, timeframe: "86400", limit: "2" }));
      const bars = data.candles;
      if (!bars.length) continue;
      const last = bars[bars.length - 1];
      state.watch[symbol] = { price: last.close, reference: bars.length > 1 ? bars[0].close : last.open };
      showWatch(symbol);
    } catch (err) {
      if (err.status === 401) return toGate(err.code);
      if (err.status === 429) break; // rate limited: the next round tries again
    }
  }
  $("watchlist").dataset.loaded = "true";
}

function updateWatchPrice(last) {
  const w = state.watch[state.symbol];
  if (!w || !last) return;
  w.price = last.close;
  showWatch(state.symbol);
}

function markWatchCurrent() {
  for (const button of document.querySelectorAll("#watchlist-items button")) {
    button.setAttribute("aria-current", String(button.dataset.symbol === state.symbol));
  }
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

function buildTimezonePicker() {
  const select = $("timezone");
  select.value = settings.tz;
  select.addEventListener("change", () => {
    settings.tz = select.value === "local" ? "local" : "utc";
    saveSettings();
    state.chart.applyOptions({ localization: { timeFormatter: fmtDateTime }, timeScale: { tickMarkFormatter: tickMark } });
    publish();
  });
}

function choose(symbol, timeframe) {
  const old = { symbol: state.symbol, timeframe: state.timeframe };
  if (old.symbol === symbol && old.timeframe === timeframe && state.candles.length) return;
  if (old.symbol && send({ type: "unsubscribe", symbol: old.symbol, timeframe: old.timeframe })) state.subscribed = null;
  state.symbol = symbol;
  state.timeframe = timeframe;
  state.barClose = null;
  state.countdownText = "--:--";
  state.historyFailed = null;
  state.candles = [];
  state.loadedKey = null;
  $("symbol").value = symbol;
  for (const button of $("timeframes").children) {
    button.setAttribute("aria-pressed", String(Number(button.dataset.tf) === timeframe));
  }
  markWatchCurrent();
  const url = new URL(location.href);
  url.searchParams.set("symbol", symbol);
  url.searchParams.set("tf", String(timeframe));
  history.replaceState(null, "", url);
  localStorage.setItem(CHOICE_KEY, JSON.stringify({ symbol, timeframe }));
  document.title = `${symbol} · Tradowix`;
  publish();
  loadHistory().then(subscribe);
}

function chartColors() {
  return {
    layout: { background: { type: "solid", color: cssVar("--bg") }, textColor: cssVar("--muted"), panes: { separatorColor: cssVar("--line") } },
    grid: { vertLines: { color: cssVar("--grid-line") }, horzLines: { color: cssVar("--grid-line") } },
    rightPriceScale: { borderColor: cssVar("--line") },
    timeScale: { borderColor: cssVar("--line") },
  };
}

function createChart() {
  const L = window.LightweightCharts;
  const colors = chartColors();
  state.chart = L.createChart(root, {
    autoSize: true,
    layout: { ...colors.layout, fontFamily: getComputedStyle(document.body).fontFamily },
    grid: colors.grid,
    rightPriceScale: colors.rightPriceScale,
    timeScale: { ...colors.timeScale, timeVisible: true, secondsVisible: false, rightOffset: RIGHT_OFFSET_BARS, tickMarkFormatter: tickMark },
    localization: { timeFormatter: fmtDateTime },
    crosshair: { mode: L.CrosshairMode.Normal },
  });
  state.series = state.chart.addSeries(L.CandlestickSeries, {
    upColor: "#26a69a", downColor: "#ef5350", borderVisible: false, wickUpColor: "#26a69a", wickDownColor: "#ef5350",
  });
  state.chart.subscribeCrosshairMove((param) => {
    const bar = param && param.seriesData ? param.seriesData.get(state.series) : null;
    showLegend(bar || state.candles[state.candles.length - 1]);
  });
  // "Go to real time" appears once the newest bar is scrolled out of view.
  state.chart.timeScale().subscribeVisibleLogicalRangeChange((range) => {
    const behind = Boolean(range) && state.candles.length > 0 && range.to < state.candles.length - 1;
    $("to-realtime").hidden = !behind;
    root.dataset.scrolledBack = String(behind);
    placeAxisCountdown();
  });
  // A jump, not scrollToRealTime()'s 400 ms animation: the chart library stops that animation
  // half-way when the view changes meanwhile (seen on a busy machine: the chart stayed behind).
  $("to-realtime").addEventListener("click", () => state.chart.timeScale().scrollToPosition(RIGHT_OFFSET_BARS, false));
  new ResizeObserver(layout).observe(root);
  // The theme follows the system setting, also when it changes while the page is open.
  window.matchMedia("(prefers-color-scheme: light)").addEventListener("change", () => {
    state.chart.applyOptions(chartColors());
    drawIndicators();
  });
}

async function signOut() {
  // Requests in flight get 401 once the cookie is cleared: they must not send the partner to
  // the gate as "missing key" before this navigation does with "signed out".
  state.leaving = true;
  try {
    await api("/api/auth/logout", { method: "POST" });
  } catch (err) {
    /* the cookie is cleared by the answer; without one we are signed out anyway */
  }
  location.assign("/gate.html?signed_out=1");
}

// -- start ------------------------------------------------------------------------------------
async function start() {
  $("sign-out").addEventListener("click", signOut);
  $("retry-now").addEventListener("click", retryNow);
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
    if (err.status === 401) return toGate(err.code);
    root.dataset.state = "error";
    notice([el("p", {}, err.message), el("button", { class: "btn", type: "button", onclick: () => location.reload() }, "Retry now")]);
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
  buildTimezonePicker();
  buildIndicatorMenu();
  buildWatchlist(catalog);
  buildIndicators();
  const params = new URLSearchParams(location.search);
  let saved = {};
  try {
    saved = JSON.parse(localStorage.getItem(CHOICE_KEY) || "{}");
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
  refreshWatchlist();
  setInterval(refreshWatchlist, WATCHLIST_REFRESH_MS);
  setInterval(tick, 250);
  setInterval(() => send({ type: "ping" }), PING_MS);
  window.addEventListener("online", () => { state.attempts = 0; reconnectNow(); });
  window.addEventListener("offline", () => setConnection("offline", "offline"));
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && !state.ws) reconnectNow();
  });
}

start();
