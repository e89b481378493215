// prodhome dashboard: fetches every panel's data from /api/dashboard, the
// lab's events from /api/events and its status from /api/status, draws each
// panel as SVG, and polls every second. No framework, no network beyond the
// daemon. Each panel carries data-panel and data-points (the points drawn);
// each event mark is an element with class "annotation" and data-kind.
"use strict";
(() => {
  const PANELS = JSON.parse(document.getElementById("catalogue").textContent);
  const POLL_MS = 1000;
  // Refetched at every poll: samples can land in the store after later
  // ones (hum and the sampler flush separately).
  const OVERLAP_MS = 5000;
  const LAG_BYTES_LIMIT = 16 * 1024 * 1024;
  const LAG_SECONDS_LIMIT = 10;
  const RANGES = { "5m": 300e3, "15m": 900e3, "1h": 3600e3, all: null };
  const PALETTE = ["#0969da", "#e16f24", "#1a7f37", "#8250df", "#cf222e", "#0a7d8c",
    "#bf3989", "#6e7781", "#9a6700", "#3b5bdb", "#2f9e44", "#d9480f"];
  // Events drawn on every panel; started/ready show in the health rows.
  const KINDS = {
    exited: ["#cf222e", "exit"], restarting: ["#e16f24", "restart"], gave_up: ["#82071e", "gave up"],
    crash_loop: ["#82071e", "crash loop"], probe_failed: ["#9a6700", "probe failed"],
    not_ready: ["#9a6700", "not ready"], fault: ["#8250df", "fault"], hum: ["#0969da", "hum"],
    adopted: ["#6e7781", "adopted"], lab: ["#6e7781", "lab"], migration: ["#bf3989", "migration"],
  };
  const STATES = { ready: "#2da44e", starting: "#d4a72c", down: "#cf222e", failed: "#82071e",
    paused: "#8250df", stopped: "#8c959f", unknown: "#d0d7de" };

  const st = {
    range: RANGES.hasOwnProperty(location.hash.slice(7)) ? location.hash.slice(7) : "15m",
    frames: {}, sinceMs: 0, stepMs: 1000, message: null, fetchedMs: 0,
    events: [], eventKeys: new Set(), status: null, statusError: null,
    colors: {}, generation: 0,
  };

  // ---- formatting -------------------------------------------------------
  const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
  const num = (v, d) => (Math.abs(v) >= 100 || Number.isInteger(v) ? Math.round(v).toString() : v.toFixed(d));
  function fmt(unit, v) {
    if (v == null || !isFinite(v)) return "–";
    const a = Math.abs(v);
    switch (unit) {
      case "per_second": return num(v, 1) + " tx/s";
      case "milliseconds": return a >= 1000 ? num(v / 1000, 2) + " s" : num(v, 1) + " ms";
      case "seconds": return a >= 120 ? num(v / 60, 1) + " min" : a < 1 && a > 0 ? num(v * 1000, 0) + " ms" : num(v, 1) + " s";
      case "bytes": {
        const units = ["B", "KiB", "MiB", "GiB", "TiB"];
        let i = 0, x = v;
        while (Math.abs(x) >= 1024 && i < units.length - 1) { x /= 1024; i++; }
        return num(x, 1) + " " + units[i];
      }
      case "percent": return num(v, 1) + "%";
      case "state": return v ? "up" : "down";
      default: return a >= 1e4 ? num(v / 1000, 1) + "k" : num(v, 1);
    }
  }
  const UNIT_NAMES = { per_second: "tx/s", milliseconds: "ms", seconds: "s", bytes: "bytes",
    percent: "% of a core", count: "count", state: "state" };
  const pad = (n) => String(n).padStart(2, "0");
  const clock = (ms, secs = true) => {
    const d = new Date(ms);
    return pad(d.getHours()) + ":" + pad(d.getMinutes()) + (secs ? ":" + pad(d.getSeconds()) : "");
  };
  function describe(e) {
    switch (e.kind) {
      case "started": return `started (pid ${e.pid})`;
      case "adopted": return `found running (pid ${e.pid})`;
      case "exited": {
        const x = e.exit || {};
        const how = x.signal != null ? `killed by signal ${x.signal}` : x.code != null ? `exit code ${x.code}` : "exited";
        return how + (e.expected ? "" : " (unexpected)");
      }
      case "restarting": return `restart #${e.attempt} in ${e.after_ms} ms`;
      case "gave_up": return `gave up after ${e.restarts} restarts`;
      case "probe_failed": return `${e.probe} probe failed: ${e.message}`;
      case "crash_loop": return `crash loop after ${e.restarts} restarts`;
      case "lab": return `lab ${e.phase}`;
      case "fault": return `fault ${e.fault} on ${e.target}: ${e.phase}`;
      case "hum": return `hum ${e.phase}`;
      case "replication_error": return `subscription ${e.subscription} failed${e.table ? " on " + e.table : ""}: ${e.message}`;
      case "replication_recovered": return `subscription ${e.subscription} streams again`;
      case "migration": return `migration ${e.file}: ${e.phase}`;
      default: return e.kind.replace("_", " ");
    }
  }

  // ---- data -------------------------------------------------------------
  const nsParam = (ms) => Math.max(0, Math.floor(ms)) + "000000";
  async function getJson(url) {
    const r = await fetch(url, { cache: "no-store" });
    if (!r.ok) throw new Error(`${url}: HTTP ${r.status} ${(await r.text()).trim()}`);
    return r.json();
  }

  // Replaces what `old` holds from `fromMs` on with `upd`.
  function merge(old, upd, fromMs) {
    if (!old) return upd;
    let keep = 0;
    while (keep < old.t.length && old.t[keep] < fromMs) keep++;
    const cols = new Map();
    for (const s of old.series) cols.set(s.label, { label: s.label, tags: s.tags, values: s.values.slice(0, keep) });
    const fresh = new Map(upd.series.map((s) => [s.label, s]));
    for (const s of upd.series) {
      if (!cols.has(s.label)) cols.set(s.label, { label: s.label, tags: s.tags, values: new Array(keep).fill(null) });
    }
    for (const c of cols.values()) {
      const u = fresh.get(c.label);
      c.values = c.values.concat(u ? u.values : new Array(upd.t.length).fill(null));
    }
    const series = [...cols.values()].sort((a, b) => (a.label < b.label ? -1 : a.label > b.label ? 1 : 0));
    return { t: old.t.slice(0, keep).concat(upd.t), series };
  }

  // Drops buckets before `startMs` and series left with nothing.
  function trim(frame, startMs) {
    let cut = 0;
    while (cut < frame.t.length && frame.t[cut] < startMs) cut++;
    if (cut === 0) return frame;
    const series = frame.series
      .map((s) => ({ ...s, values: s.values.slice(cut) }))
      .filter((s) => s.values.some((v) => v != null));
    return { t: frame.t.slice(cut), series };
  }

  async function loadSeries(initial) {
    const gen = st.generation;
    let url, fromMs = 0;
    if (initial) {
      url = `/api/dashboard?since=${st.range}&step=auto`;
    } else {
      fromMs = Math.floor((st.fetchedMs - OVERLAP_MS) / st.stepMs) * st.stepMs;
      url = `/api/dashboard?since=${nsParam(fromMs)}&step=${st.stepMs}ms`;
    }
    const d = await getJson(url);
    if (gen !== st.generation) return; // the range changed meanwhile
    st.message = d.message || null;
    st.fetchedMs = d.now_ns / 1e6;
    if (initial) {
      st.stepMs = d.step_ms;
      st.sinceMs = d.since_ns / 1e6;
      st.frames = d.panels;
    } else {
      for (const [id, f] of Object.entries(d.panels)) st.frames[id] = merge(st.frames[id], f, fromMs);
    }
    const start = windowOf().start - st.stepMs;
    for (const id of Object.keys(st.frames)) st.frames[id] = trim(st.frames[id], start);
  }

  async function loadEvents() {
    const last = st.events.length ? st.events[st.events.length - 1].ts_ns / 1e6 : 0;
    const list = await getJson(`/api/events?since=${last ? nsParam(last - 1) : 0}`);
    for (const e of list) {
      const key = `${e.ts_ns}|${e.unit}|${e.kind}`;
      if (st.eventKeys.has(key)) continue;
      st.eventKeys.add(key);
      e.ms = e.ts_ns / 1e6;
      st.events.push(e);
    }
    st.events.sort((a, b) => a.ms - b.ms);
  }

  // The log view: the server filters (node, level, text); newest first.
  async function loadLog() {
    const q = (id) => encodeURIComponent(document.getElementById(id).value.trim());
    const url = `/api/log?since=${st.range}&node=${q("log-node")}&level=${q("log-level")}&grep=${q("log-grep")}&limit=200`;
    st.log = await getJson(url);
  }

  function renderLog() {
    const nodes = st.status ? st.status.nodes.map((n) => n.name) : [];
    const select = document.getElementById("log-node");
    const have = [...select.options].map((o) => o.value).filter(Boolean);
    for (const n of nodes) {
      if (!have.includes(n)) select.insertAdjacentHTML("beforeend", `<option value="${esc(n)}">${esc(n)}</option>`);
    }
    const list = document.getElementById("log-lines");
    const lines = st.log || [];
    list.dataset.lines = lines.length;
    list.innerHTML = lines.length ? lines.map((l) =>
      `<li data-level="${esc(l.level)}"><time>${clock(l.ms)}</time><b>${esc(l.node)}</b><i>${esc(l.level)}</i>${esc(l.text)}</li>`).join("")
      : `<li class="empty">no log lines match in this range</li>`;
  }

  async function loadStatus() {
    try {
      st.status = await getJson("/api/status");
      st.statusError = null;
    } catch (err) {
      st.statusError = String(err.message || err);
    }
  }

  // The range, but never before the lab's start (the server clamps
  // `since` to it): a young lab fills the width. It ends when the data was
  // read (the server's clock), so a daemon that stops answering freezes
  // the charts rather than scrolling them empty.
  function windowOf() {
    const end = st.fetchedMs || Date.now();
    const span = RANGES[st.range];
    return { start: span ? Math.max(end - span, st.sinceMs) : st.sinceMs, end };
  }

  // ---- drawing ----------------------------------------------------------
  function colorOf(panelId, label) {
    const map = (st.colors[panelId] = st.colors[panelId] || new Map());
    if (!map.has(label)) map.set(label, PALETTE[map.size % PALETTE.length]);
    return map.get(label);
  }

  // A y scale of 4 or so round steps (1, 2, 2.5, 5 x 10^k) covering max.
  // Bytes step in round KiB/MiB/GiB.
  function niceScale(max, unit) {
    if (!(max > 0)) return unit === "count" ? [1, 1] : [1, 0.25];
    let scale = 1;
    if (unit === "bytes") while (max / scale >= 1024) scale *= 1024;
    const raw = max / scale / 4, p = Math.pow(10, Math.floor(Math.log10(raw)));
    let step = [1, 2, 2.5, 5, 10].map((m) => m * p).find((s) => s >= raw) * scale;
    if (unit === "count") step = Math.max(1, Math.round(step)); // no half a backend
    return [Math.ceil(max / step - 1e-9) * step, step];
  }
  // Axis labels: the unit is in the panel's title unless it changes scale.
  function tick(unit, v) {
    if (unit === "per_second" || unit === "count") return fmt("count", v);
    if (unit === "percent") return Math.round(v) + "%";
    return fmt(unit, v);
  }
  const TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400].map((s) => s * 1000);

  function timeAxis(win, x, top, bottom, width) {
    const most = Math.max(2, Math.floor(width / 90));
    const step = TIME_STEPS.find((s) => (win.end - win.start) / s <= most) || 86400e3;
    let out = "";
    for (let t = Math.ceil(win.start / step) * step; t <= win.end; t += step) {
      const px = x(t).toFixed(1);
      out += `<line class="grid" x1="${px}" x2="${px}" y1="${top}" y2="${bottom}"/>`;
      out += `<text x="${px}" y="${bottom + 12}" text-anchor="middle">${clock(t, step < 60e3)}</text>`;
    }
    return out;
  }

  // A migration from "started" to its "finished"/"failed" (or to now, while
  // it runs), as a shaded band behind the lines.
  function migrationSpans(win, x, top, bottom) {
    let out = "";
    st.events.forEach((e, i) => {
      if (e.kind !== "migration" || e.phase !== "started") return;
      const end = st.events.slice(i + 1).find((f) => f.kind === "migration" && f.unit === e.unit &&
        f.file === e.file && f.phase !== "started");
      const from = Math.max(e.ms, win.start), to = Math.min(end ? end.ms : win.end, win.end);
      if (to < from) return;
      const x0 = x(from), w = Math.max(2, x(to) - x0);
      const how = end ? end.phase : "running";
      out += `<g class="annotation span" data-kind="migration" data-unit="${esc(e.unit)}">` +
        `<title>${clock(e.ms)}–${end ? clock(end.ms) : "now"} ${esc(e.unit)}: migration ${esc(e.file)} (${esc(how)})</title>` +
        `<rect x="${x0.toFixed(1)}" y="${top}" width="${w.toFixed(1)}" height="${bottom - top}" ` +
        `fill="${KINDS.migration[0]}" fill-opacity="0.12"/></g>`;
    });
    return out;
  }

  function annotations(win, x, top, bottom) {
    let out = migrationSpans(win, x, top, bottom);
    for (const e of st.events) {
      if (!KINDS[e.kind] || e.ms < win.start || e.ms > win.end) continue;
      const px = x(e.ms).toFixed(1);
      const color = KINDS[e.kind][0];
      out += `<g class="annotation" data-kind="${esc(e.kind)}" data-unit="${esc(e.unit)}">` +
        `<title>${clock(e.ms)} ${esc(e.unit)}: ${esc(describe(e))}</title>` +
        `<line x1="${px}" x2="${px}" y1="${top}" y2="${bottom}" stroke="${color}"/>` +
        `<path d="M${px} ${top} l-4 -5 h8 z" fill="${color}"/></g>`;
    }
    return out;
  }

  // Lines or stacked areas; returns [svg, points drawn, legend values].
  function drawSeries(panel, frame, win, el) {
    const width = Math.max(240, el.clientWidth || 520), height = Math.max(100, el.clientHeight || 160);
    const m = { l: 54, r: 10, t: 8, b: 18 };
    const x = (t) => m.l + ((t - win.start) / (win.end - win.start || 1)) * (width - m.l - m.r);
    const stacked = panel.chart === "stacked";
    const n = frame.t.length;
    const tops = frame.series.map(() => new Array(n).fill(null));
    let max = 0, points = 0;
    for (let j = 0; j < n; j++) {
      let sum = 0;
      frame.series.forEach((s, i) => {
        const v = s.values[j];
        if (v == null) { if (stacked) tops[i][j] = sum; return; }
        if (frame.t[j] >= win.start - st.stepMs) points++;
        sum = stacked ? sum + v : v;
        tops[i][j] = sum;
        max = Math.max(max, sum);
      });
    }
    const [ymax, ystep] = niceScale(max, panel.unit);
    const y = (v) => height - m.b - (v / ymax) * (height - m.t - m.b);
    let svg = `<svg viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="${esc(panel.title)}">`;
    for (let v = 0; v <= ymax + ystep / 2; v += ystep) {
      const py = y(v).toFixed(1);
      svg += `<line class="grid" x1="${m.l}" x2="${width - m.r}" y1="${py}" y2="${py}"/>`;
      svg += `<text x="${m.l - 4}" y="${+py + 3}" text-anchor="end">${esc(tick(panel.unit, v))}</text>`;
    }
    svg += timeAxis(win, x, m.t, height - m.b, width - m.l);
    // A gap longer than a few buckets (a node down) breaks the line.
    const gap = st.stepMs * 3.5;
    frame.series.forEach((s, i) => {
      const color = colorOf(panel.id, s.label);
      if (stacked) {
        const below = i > 0 ? tops[i - 1] : null;
        let up = "", down = "";
        for (let j = 0; j < n; j++) {
          const px = x(frame.t[j]).toFixed(1);
          up += `${up ? "L" : "M"}${px} ${y(tops[i][j] ?? 0).toFixed(1)}`;
          down = `L${px} ${y(below ? below[j] ?? 0 : 0).toFixed(1)}` + down;
        }
        if (n) svg += `<path class="area" d="${up}${down}Z" fill="${color}" fill-opacity="0.7" stroke="${color}" stroke-width="0.5"/>`;
      } else {
        let d = "", prev = null;
        for (let j = 0; j < n; j++) {
          const v = s.values[j];
          if (v == null) { prev = null; continue; }
          const cmd = prev == null || frame.t[j] - prev > gap ? "M" : "L";
          d += `${cmd}${x(frame.t[j]).toFixed(1)} ${y(v).toFixed(1)}`;
          prev = frame.t[j];
        }
        if (d) svg += `<path class="series" d="${d}" stroke="${color}"/>`;
      }
    });
    svg += `<line class="axis" x1="${m.l}" x2="${width - m.r}" y1="${height - m.b}" y2="${height - m.b}"/>`;
    svg += annotations(win, x, m.t, height - m.b) + "</svg>";
    // Each legend entry also carries the series' largest value drawn
    // (data-max): what a reader of the page (or a test) checks a spike by.
    const legend = frame.series.map((s) => {
      let last = null;
      for (let j = s.values.length - 1; j >= 0 && last == null; j--) last = s.values[j];
      const top = s.values.reduce((a, v) => (v == null ? a : Math.max(a, v)), 0);
      return [s.label, colorOf(panel.id, s.label), fmt(panel.unit, last), top];
    });
    return [svg, points, legend];
  }

  // Bars: each series' latest value in the window, largest first, at most
  // ten; the label (node and statement text) is written on the bar.
  function drawBars(panel, frame, win, el) {
    const width = Math.max(240, el.clientWidth || 520), row = 16, m = { l: 4, r: 70, t: 4, b: 4 };
    const latest = frame.series.map((s) => {
      let last = null;
      for (let j = s.values.length - 1; j >= 0 && last == null; j--) {
        if (frame.t[j] >= win.start - st.stepMs) last = s.values[j];
      }
      return [s, last];
    }).filter(([, v]) => v != null).sort((a, b) => b[1] - a[1]).slice(0, 10);
    const height = m.t + m.b + Math.max(1, latest.length) * row;
    const max = latest.length ? Math.max(latest[0][1], 1e-9) : 1;
    const chars = Math.max(10, Math.floor((width - m.r - 8) / 5.5));
    const cut = (t) => (t.length > chars ? t.slice(0, chars - 1) + "…" : t);
    let svg = `<svg viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="${esc(panel.title)}">`;
    latest.forEach(([s, v], i) => {
      const top = m.t + i * row, w = Math.max(1, (v / max) * (width - m.l - m.r));
      svg += `<rect class="bar" x="${m.l}" y="${top + 1}" width="${w.toFixed(1)}" height="${row - 2}" fill="${colorOf(panel.id, s.tags.node || "")}" fill-opacity="0.35"/>`;
      svg += `<text class="bar-label" x="${m.l + 3}" y="${top + row - 4}"><title>${esc(s.label)}</title>${esc(cut(s.label))}</text>`;
      svg += `<text x="${width - 2}" y="${top + row - 4}" text-anchor="end">${esc(fmt(panel.unit, v))}</text>`;
    });
    if (!latest.length) svg += `<text x="${m.l}" y="${m.t + 12}">no statements in this range</text>`;
    svg += "</svg>";
    const legend = latest.length ? [...new Set(latest.map(([s]) => s.tags.node || ""))].map((n) => [n, colorOf(panel.id, n), ""]) : [];
    return [svg, latest.length, legend];
  }

  const TRANSITIONS = { started: "starting", adopted: "starting", ready: "ready", not_ready: "starting",
    exited: "down", restarting: "down", gave_up: "failed", crash_loop: "failed" };
  const STATUS_STATES = { ready: "ready", starting: "starting", unready: "starting", down: "down",
    failed: "failed", stopped: "stopped", paused: "paused" };

  // One row per node: its state over the window, from the events, with
  // the daemon's current view closing each row.
  function drawHealth(panel, _frame, win, el) {
    const nodes = st.status ? st.status.nodes : [];
    const width = Math.max(240, el.clientWidth || 1000);
    const row = 22, m = { l: 120, r: 10, t: 8, b: 18 };
    const height = m.t + m.b + Math.max(1, nodes.length) * row;
    const x = (t) => m.l + ((t - win.start) / (win.end - win.start || 1)) * (width - m.l - m.r);
    let svg = `<svg viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="node health">`;
    svg += timeAxis(win, x, m.t, height - m.b, width - m.l);
    let points = 0;
    nodes.forEach((node, i) => {
      let state = "unknown";
      const marks = [];
      for (const e of st.events) {
        if (e.unit !== node.name || !TRANSITIONS[e.kind]) continue;
        if (e.ms <= win.start) state = TRANSITIONS[e.kind];
        else if (e.ms <= win.end) marks.push([e.ms, TRANSITIONS[e.kind]]);
      }
      const now = STATUS_STATES[node.state] || "unknown";
      const stops = [[win.start, state], ...marks, [win.end, now]];
      points += stops.length;
      const top = m.t + i * row;
      for (let k = 0; k + 1 < stops.length; k++) {
        const x0 = x(stops[k][0]), x1 = x(stops[k + 1][0]);
        svg += `<rect class="state" data-state="${stops[k][1]}" x="${x0.toFixed(1)}" y="${top + 3}" width="${Math.max(0.5, x1 - x0).toFixed(1)}" height="${row - 6}" fill="${STATES[stops[k][1]]}"/>`;
      }
      const restarts = node.restarts ? ` · ${node.restarts}↻` : "";
      svg += `<text x="4" y="${top + row / 2 + 3}" class="node">${esc(node.name)} <tspan>${esc(node.state)}${restarts}</tspan></text>`;
    });
    if (!nodes.length) svg += `<text x="${m.l}" y="${m.t + 14}">waiting for the daemon's status…</text>`;
    svg += annotations(win, x, m.t, height - m.b) + "</svg>";
    const legend = Object.entries(STATES).filter(([s]) => s !== "stopped").map(([s, c]) => [s, c, ""]);
    return [svg, points, legend];
  }

  function renderPanel(panel) {
    const sec = document.querySelector(`section[data-panel="${panel.id}"]`);
    const chart = sec.querySelector(".chart");
    const win = windowOf();
    const frame = st.frames[panel.id] || { t: [], series: [] };
    const draw = { health: drawHealth, bars: drawBars }[panel.chart];
    const [svg, points, legend] = draw ? draw(panel, frame, win, chart) : drawSeries(panel, frame, win, chart);
    chart.innerHTML = svg;
    sec.dataset.points = points;
    sec.dataset.series = legend.length;
    let html = legend.map(([label, color, value, top]) =>
      `<li${top == null ? "" : ` data-max="${top}"`}><i style="background:${color}"></i>${esc(label)}${value ? `<b>${esc(value)}</b>` : ""}</li>`).join("");
    if (panel.chart !== "health" && !frame.series.length) {
      html = `<li class="empty">${esc(st.message || "no data in this range yet")}</li>`;
    }
    sec.querySelector(".legend").innerHTML = html;
    // An optional panel (container stats: docker labs only) with nothing
    // to draw is hidden rather than shown empty on every native lab.
    sec.hidden = panel.optional && !frame.series.length;
    if (panel.chart === "health") {
      sec.querySelector(".events").innerHTML = st.events.slice(-8).reverse().map((e) =>
        `<li><time>${clock(e.ms)}</time>${esc(e.unit)}: ${esc(describe(e))}</li>`).join("");
    }
  }

  function renderStatus() {
    const bar = document.getElementById("status");
    const s = st.status;
    let ok = false, text;
    if (st.statusError || !s) {
      text = st.statusError ? `daemon not answering (${st.statusError}); showing the last data` : "connecting…";
    } else {
      document.getElementById("lab").textContent = s.lab;
      document.title = `prodhome ${s.lab}`;
      const problems = [];
      const down = s.nodes.filter((n) => n.state !== "ready");
      if (down.length) problems.push(down.map((n) => `${n.name} ${n.state}`).join(", "));
      const lagBytes = Math.max(0, ...s.replication.map((l) => l.lag_bytes || 0));
      const broken = s.replication.filter((l) => l.state !== "streaming" || l.fault);
      if (broken.length) problems.push(broken.map((l) => l.error ? `${l.subscriber} error: ${l.error}` : `${l.subscriber} ${l.state}${l.fault ? ` (${l.fault})` : ""}`).join(", "));
      if (lagBytes > LAG_BYTES_LIMIT) problems.push(`replication lag ${fmt("bytes", lagBytes)} (limit ${fmt("bytes", LAG_BYTES_LIMIT)})`);
      const secs = st.frames.replication_lag_seconds;
      let lagSecs = 0;
      for (const c of secs ? secs.series : []) {
        const v = c.values.filter((x) => x != null).pop();
        if (v != null) lagSecs = Math.max(lagSecs, v);
      }
      if (lagSecs > LAG_SECONDS_LIMIT) problems.push(`replication lag ${fmt("seconds", lagSecs)} (limit ${LAG_SECONDS_LIMIT} s)`);
      const looping = new Set(st.events.filter((e) => e.kind === "crash_loop" || e.kind === "gave_up").map((e) => e.unit));
      const stillLooping = s.nodes.filter((n) => looping.has(n.name) && n.state !== "ready").map((n) => n.name);
      if (stillLooping.length) problems.push(`crash loop: ${stillLooping.join(", ")}`);
      // A sink that cannot write loses the lab's metrics: never "healthy".
      for (const k of (s.sinks || []).filter((k) => k.state !== "ok")) {
        problems.push(`sink ${k.name} ${k.state}${k.last_error ? ": " + k.last_error : ""}`);
      }
      if (s.phase !== "ready") problems.unshift(`lab ${s.phase}${s.message ? ": " + s.message : ""}`);
      ok = problems.length === 0;
      text = ok
        ? `healthy · ${s.nodes.length}/${s.nodes.length} nodes ready · replication lag ${fmt("bytes", lagBytes)}, ${fmt("seconds", lagSecs)} · no crash loop`
        : `unhealthy · ${problems.join(" · ")}`;
    }
    bar.textContent = text;
    bar.dataset.healthy = s && !st.statusError ? String(ok) : "unknown";
    const upd = document.getElementById("updated");
    if (st.fetchedMs) upd.textContent = `data at ${clock(st.fetchedMs)} · step ${st.stepMs >= 1000 ? st.stepMs / 1000 + " s" : st.stepMs + " ms"}`;
  }

  function render() {
    renderStatus();
    renderLog();
    for (const p of PANELS) renderPanel(p);
  }

  function build() {
    const main = document.getElementById("panels");
    main.innerHTML = PANELS.map((p) =>
      `<section class="panel" data-panel="${p.id}" data-chart="${p.chart}" data-points="0" title="${esc(p.help)}">` +
      `<h2>${esc(p.title)} <span class="unit">${esc(UNIT_NAMES[p.unit] || p.unit)}</span></h2>` +
      `<div class="chart"></div><ul class="legend"></ul>` +
      (p.chart === "health" ? `<ul class="events"></ul>` : "") + `</section>`).join("");
    document.getElementById("keys").innerHTML = "marks: " + Object.values(KINDS)
      .map(([c, name]) => `<span><i style="background:${c}"></i>${esc(name)}</span>`).join("");
    for (const b of document.querySelectorAll(".range button")) {
      b.addEventListener("click", () => setRange(b.dataset.range));
    }
    for (const id of ["log-node", "log-level", "log-grep"]) {
      document.getElementById(id).addEventListener("input", () => loadLog().then(renderLog, () => {}));
    }
    let pending = null;
    window.addEventListener("resize", () => {
      clearTimeout(pending);
      pending = setTimeout(render, 100);
    });
  }

  function markRange() {
    for (const b of document.querySelectorAll(".range button")) b.classList.toggle("on", b.dataset.range === st.range);
  }

  function setRange(range) {
    st.range = range;
    st.generation++;
    st.frames = {};
    history.replaceState(null, "", "#range=" + range);
    markRange();
    refresh(true);
  }

  let timer = null;
  async function refresh(initial) {
    clearTimeout(timer);
    const gen = st.generation;
    // A window that grew (a young lab aging) refetches at a coarser step.
    const win = windowOf();
    const again = !st.fetchedMs || (win.end - win.start) / st.stepMs > 2 * 360;
    const jobs = [loadSeries(initial || again), loadEvents(), loadStatus(), loadLog()];
    const results = await Promise.allSettled(jobs);
    const failed = results.find((r) => r.status === "rejected");
    if (failed && !st.message) st.message = String(failed.reason.message || failed.reason);
    render();
    if (gen === st.generation) timer = setTimeout(() => refresh(false), POLL_MS);
  }

  build();
  markRange();
  refresh(true);
})();
