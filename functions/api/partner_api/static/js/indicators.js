// Indicators and the built-in strategy's signals, for the chart.
//
// The strategy itself is Python (tradowix_bot/strategy.py, on talipp). This file follows the
// same definitions step by step, including talipp's quirks (RSI seeded from period-1 changes,
// Bollinger on the population standard deviation, EMA seeded with an SMA), so the markers a
// partner sees are the signals `tradowix signal` / the backtest compute. An e2e test runs both
// on the same bars and compares them (tests/e2e/test_chart_indicators.py).
//
// Every function takes an array of numbers and returns an array of the same length, with null
// where the indicator is not defined yet (the warm-up).
"use strict";

const TradowixIndicators = (() => {
  const RSI_PERIOD = 14;
  const BB_PERIOD = 20;
  const BB_STD = 2.0;

  function sma(values, period) {
    const out = new Array(values.length).fill(null);
    for (let i = period - 1; i < values.length; i++) {
      let sum = 0;
      for (let j = i - period + 1; j <= i; j++) sum += values[j];
      out[i] = sum / period;
    }
    return out;
  }

  // talipp's EMA: the first value is the SMA of the first `period` inputs.
  function ema(values, period) {
    const out = new Array(values.length).fill(null);
    const k = 2 / (period + 1);
    for (let i = period - 1; i < values.length; i++) {
      if (i === period - 1) {
        let sum = 0;
        for (let j = 0; j < period; j++) sum += values[j];
        out[i] = sum / period;
      } else {
        out[i] = (values[i] - out[i - 1]) * k + out[i - 1];
      }
    }
    return out;
  }

  // talipp's StdDev: population standard deviation of the last `period` values.
  function bollinger(values, period = BB_PERIOD, mult = BB_STD) {
    const mid = sma(values, period);
    return values.map((_, i) => {
      if (mid[i] === null) return null;
      let sq = 0;
      for (let j = i - period + 1; j <= i; j++) sq += (values[j] - mid[i]) ** 2;
      const sd = Math.sqrt(sq / period);
      return { lower: mid[i] - mult * sd, middle: mid[i], upper: mid[i] + mult * sd };
    });
  }

  // talipp's RSI: averages seeded from the first period-1 changes, then Wilder's smoothing
  // (the first RSI value, at index `period`, already includes one smoothing step).
  function rsi(values, period = RSI_PERIOD) {
    const out = new Array(values.length).fill(null);
    let gain = null;
    let loss = null;
    for (let i = period; i < values.length; i++) {
      if (i === period) {
        let g = 0;
        let l = 0;
        for (let j = 1; j < period; j++) {
          const change = values[j] - values[j - 1];
          if (change > 0) g += change;
          if (change < 0) l -= change;
        }
        gain = g / (period - 1);
        loss = l / (period - 1);
      }
      const change = values[i] - values[i - 1];
      gain = (gain * (period - 1) + (change > 0 ? change : 0)) / period;
      loss = (loss * (period - 1) + (change < 0 ? -change : 0)) / period;
      out[i] = loss === 0 ? 100 : 100 - 100 / (1 + gain / loss);
    }
    return out;
  }

  const clip = (x) => Math.max(-1, Math.min(1, x));

  // strategy.signals(): one entry per bar (null during the warm-up), decided at the bar's close.
  function signals(bars) {
    const closes = bars.map((b) => b.close);
    const r = rsi(closes);
    const bands = bollinger(closes);
    return bars.map((bar, i) => {
      if (r[i] === null || bands[i] === null) return null;
      const width = bands[i].upper - bands[i].lower;
      const percentB = width <= 0 ? 0.5 : (closes[i] - bands[i].lower) / width;
      const score = (clip((50 - r[i]) / 30) + clip(0.5 - percentB)) / 2;
      const direction = score > 0 ? "CALL" : score < 0 ? "PUT" : null;
      return { time: bar.time, direction, confidence: Math.abs(score), rsi: r[i], percentB };
    });
  }

  return { sma, ema, bollinger, rsi, signals, RSI_PERIOD, BB_PERIOD, BB_STD };
})();
