// emgflow live view: one WebSocket from the server; it pushes the table every 500 ms and the new
// rows of the streams this page watches. Charts: uPlot (vendored, MIT, static/uPlot.LICENSE).
"use strict";

const WINDOW_S = 10;                       // seconds of stream time a scope shows
const STATE_COLOR = { running: "#16a34a", ready: "#d97706", starting: "#d97706", new: "#9ca3af",
                      done: "#2563eb", stopped: "#6b7280", failed: "#dc2626" };
const PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#65a30d",
                 "#ea580c", "#4f46e5", "#0d9488", "#be123c", "#ca8a04", "#9333ea", "#0284c7", "#57534e"];
const $ = (id) => document.getElementById(id);
const NS = "http://www.w3.org/2000/svg";
const svg = (tag, attrs, parent) => {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
  if (parent) parent.appendChild(el);
  return el;
};
const fmt = (v, d = 2) => (v === null || v === undefined ? "-" : v.toFixed(d));
const setText = (el, text) => { if (el.textContent !== text) el.textContent = text; };   // no relayout if unchanged

let ws = null, init = null, ended = false;
const scopes = new Map();                  // stream name -> scope object
const handFrames = {};                     // hand node -> frame index shown
let histStream = null;                     // the stream tapped for the histogram's node

// --- the graph --------------------------------------------------------------------------------
const graphEls = { nodes: {}, edges: {} };
function drawGraph(g) {
  const el = $("graph"), W = 184, H = 50, BW = 118, BH = 34;
  const cols = Math.max(...g.nodes.map((n) => n.col)) + 1, rows = Math.max(...g.nodes.map((n) => n.row)) + 1;
  el.setAttribute("viewBox", `0 0 ${cols * W + 10} ${rows * H + 10}`);
  const pos = {};
  for (const n of g.nodes) pos[n.id] = { x: 8 + n.col * W, y: 8 + n.row * H };
  for (const e of g.edges) {
    const a = pos[e.source], b = pos[e.node];
    const x1 = a.x + BW, y1 = a.y + BH / 2, x2 = b.x, y2 = b.y + BH / 2, mx = (x1 + x2) / 2;
    const grp = svg("g", { class: "edge" + (e.policy === "latest" ? " latest" : "") }, el);
    svg("path", { d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}` }, grp);
    const label = svg("text", { x: mx, y: (y1 + y2) / 2 - 3, "text-anchor": "middle" }, grp);
    const drops = svg("text", { x: mx, y: (y1 + y2) / 2 + 10, "text-anchor": "middle", class: "drops" }, grp);
    const title = svg("title", {}, grp);
    title.textContent = `${e.source}.${e.output} -> ${e.node}.${e.port} (${e.policy})`;
    graphEls.edges[e.id] = { grp, label, drops };
  }
  for (const n of g.nodes) {
    const grp = svg("g", { class: "node", transform: `translate(${pos[n.id].x},${pos[n.id].y})` }, el);
    const rect = svg("rect", { width: BW, height: BH, rx: 6, fill: STATE_COLOR.new }, grp);
    svg("text", { x: 8, y: 15, "font-weight": 600 }, grp).textContent = n.id;
    svg("text", { x: 8, y: 28, class: "type" }, grp).textContent = n.type;
    svg("title", {}, grp).textContent = `${n.id} (${n.type})`;
    graphEls.nodes[n.id] = rect;
  }
}
function updateGraph(stats) {
  for (const [id, r] of Object.entries(stats.nodes)) graphEls.nodes[id]?.setAttribute("fill", STATE_COLOR[r.state] || "#9ca3af");
  for (const [id, e] of Object.entries(stats.edges)) {
    const el = graphEls.edges[id];
    if (!el) continue;
    setText(el.label, `${e.rate.toFixed(0)}/s`);
    setText(el.drops, e.dropped ? `${e.dropped} dropped` : "");
    el.grp.classList.toggle("dropping", e.dropped > 0);
  }
}

// --- the table --------------------------------------------------------------------------------
const COLS = ["node", "type", "state", "in", "out", "rate", "dropped", "gaps", "bad", "restarts", "p50_ms", "p99_ms", "counters"];
const cells = {};
function buildTable(g) {
  const body = $("table").querySelector("tbody");
  for (const n of g.nodes) {
    const tr = document.createElement("tr");
    tr.dataset.node = n.id;
    cells[n.id] = {};
    for (const c of COLS) {
      const td = document.createElement("td");
      td.dataset.col = c;
      tr.appendChild(td);
      cells[n.id][c] = td;
    }
    cells[n.id].node.textContent = n.id;
    cells[n.id].type.textContent = n.type;
    body.appendChild(tr);
  }
}
function updateTable(stats) {
  let drops = 0, bad = 0;
  for (const [id, r] of Object.entries(stats.nodes)) {
    const c = cells[id];
    if (c.state.dataset.state !== r.state) {
      c.state.dataset.state = r.state;
      c.state.innerHTML = `<span class="state" style="background:${STATE_COLOR[r.state] || "#999"}"></span>${r.state}`;
    }
    for (const k of ["in", "out", "dropped", "gaps", "bad", "restarts"]) setText(c[k], String(r[k]));
    setText(c.rate, r.rate.toFixed(0));
    setText(c.p50_ms, fmt(r.p50_ms));
    setText(c.p99_ms, fmt(r.p99_ms));
    setText(c.counters, Object.entries(r.counters).map(([k, v]) => `${k}=${v}`).join(" "));
    for (const k of ["dropped", "gaps", "bad", "restarts"]) c[k].classList.toggle("warn", r[k] > 0);
    drops += r.dropped; bad += r.bad;
  }
  setText($("totals"), `${drops} dropped · ${bad} bad`);
}

// --- scopes -----------------------------------------------------------------------------------
function autoMode(name, columns) {
  const [node, port] = name.split(".");
  const type = init.graph.nodes.find((n) => n.id === node)?.type;
  if (port === "proba") return "bars";
  if (type === "vote" || (columns === 1 && /label|decision|class/.test(port))) return "strip";
  return columns > 4 ? "stacked" : "lines";
}
function addScope(name) {
  if (scopes.has(name) || !init.streams.includes(name)) return;
  const box = document.createElement("div");
  box.className = "scope";
  box.dataset.stream = name;
  box.innerHTML = `<div class="scope-head"><b>${name}</b><select class="mode">
      <option value="auto">auto</option><option value="stacked">stacked</option><option value="lines">lines</option>
      <option value="bars">bars</option><option value="strip">strip</option></select>
      <span class="meta"></span><button class="close" type="button" title="close">×</button></div><div class="plot"></div>`;
  $("scopes").appendChild(box);
  const s = { name, box, t: [], y: [], columns: 0, mode: "auto", plot: null, drawn: "", rows: 0 };
  box.querySelector(".mode").onchange = (ev) => { s.mode = ev.target.value; s.drawn = ""; render(s); };
  box.querySelector(".close").onclick = () => { s.plot?.destroy?.(); box.remove(); scopes.delete(name); sendWatch(); };
  scopes.set(name, s);
  sendWatch();
}
function appendRows(s, d) {
  if (d.t.length && s.t.length && d.t[0] < s.t[s.t.length - 1]) { s.t = []; s.y = []; }   // the stream restarted
  if (d.y.length !== s.y.length) { s.y = d.y.map(() => []); s.t = []; s.drawn = ""; }
  s.t.push(...d.t);
  d.y.forEach((col, i) => s.y[i].push(...col));
  const cut = s.t.findIndex((t) => t >= s.t[s.t.length - 1] - WINDOW_S);
  if (cut > 0) { s.t.splice(0, cut); s.y.forEach((col) => col.splice(0, cut)); }
  s.columns = d.columns; s.rate = d.rate; s.step = d.step; s.rows += d.t.length;
}
function render(s) {
  if (!s.t.length) return;
  const mode = s.mode === "auto" ? autoMode(s.name, s.columns) : s.mode;
  const key = `${mode}:${s.y.length}`;
  const plotEl = s.box.querySelector(".plot");
  if (s.drawn !== key) {
    s.plot?.destroy?.();
    plotEl.innerHTML = "";
    s.plot = mode === "bars" ? makeBars(plotEl, s.y.length) : mode === "strip" ? makeStrip(plotEl)
      : makeLines(plotEl, s.y.length, mode === "stacked");
    s.drawn = key;
  }
  s.plot.update(s);
}
function plotWidth(el) { return Math.max(300, el.clientWidth || el.parentElement.clientWidth - 4); }
function makeLines(el, n, stacked) {
  const series = [{}];
  for (let i = 0; i < n; i++) series.push({ label: `ch${i}`, stroke: PALETTE[i % PALETTE.length], width: 1, points: { show: false } });
  const axes = [{ stroke: "#6b7280", grid: { stroke: "#eef0f3" }, ticks: { stroke: "#e5e7eb" } },
    stacked ? { stroke: "#6b7280", grid: { show: false }, splits: () => [...Array(n).keys()].map((i) => n - 1 - i),
                values: (u, vals) => vals.map((v) => `ch${n - 1 - v}`), size: 44 }
            : { stroke: "#6b7280", grid: { stroke: "#eef0f3" }, size: 56 }];
  const opts = { width: plotWidth(el), height: stacked ? Math.min(360, 60 + 20 * n) : 170, series, axes,
                 legend: { show: !stacked && n <= 16 }, cursor: { drag: { x: false, y: false } },
                 scales: { x: { time: false }, y: stacked ? { range: [-0.6, n - 0.4] } : { auto: true } } };
  const u = new uPlot(opts, [[], ...Array(n).fill([])], el);
  return {
    update(s) {
      let ys = s.y;
      if (stacked) {   // one lane per channel, every lane at the window's largest absolute value
        let top = 0;
        for (const col of s.y) for (const v of col) top = Math.max(top, Math.abs(v));
        const k = top > 0 ? 0.48 / top : 1;
        ys = s.y.map((col, i) => col.map((v) => v * k + (n - 1 - i)));
      }
      u.setData([s.t, ...ys]);
    },
    destroy() { u.destroy(); },
  };
}
function makeBars(el, n) {
  el.innerHTML = `<div class="bars-wrap"><div class="bars">${[...Array(n).keys()].map((i) => `<div class="bar"><span>${i}</span></div>`).join("")}</div></div>`;
  const bars = [...el.querySelectorAll(".bar")];
  return {
    update(s) {
      const last = s.y.map((col) => col[col.length - 1]);
      const top = last.indexOf(Math.max(...last));
      bars.forEach((b, i) => { b.style.height = `${Math.max(0, Math.min(1, last[i])) * 100}%`; b.classList.toggle("top", i === top); b.title = `class ${i}: ${last[i].toFixed(3)}`; });
    },
  };
}
function makeStrip(el) {
  el.innerHTML = `<canvas class="strip"></canvas><div class="strip-legend"></div>`;
  const canvas = el.querySelector("canvas"), legend = el.querySelector(".strip-legend");
  return {
    update(s) {
      const w = canvas.width = plotWidth(el), h = canvas.height = 46, ctx = canvas.getContext("2d");
      const t = s.t, v = s.y[0], t1 = t[t.length - 1], t0 = t1 - WINDOW_S;
      ctx.clearRect(0, 0, w, h);
      for (let i = 0; i < t.length; i++) {
        const x0 = ((t[i] - t0) / WINDOW_S) * w, x1 = i + 1 < t.length ? ((t[i + 1] - t0) / WINDOW_S) * w : w;
        ctx.fillStyle = v[i] < 0 ? "#e5e7eb" : PALETTE[v[i] % PALETTE.length];
        ctx.fillRect(x0, 0, Math.max(1, x1 - x0), h);
        if (i === 0 || v[i] !== v[i - 1]) { ctx.fillStyle = "white"; ctx.font = "11px sans-serif"; ctx.fillText(String(v[i]), x0 + 3, 28); }
      }
      legend.textContent = `now: ${v[v.length - 1] < 0 ? "no decision" : "class " + v[v.length - 1]}   (last ${WINDOW_S} s; colour = class)`;
    },
  };
}
function updateScopes(msg) {
  for (const [name, d] of Object.entries(msg.scopes || {})) {
    const s = scopes.get(name);
    if (s) appendRows(s, d);
  }
  for (const s of scopes.values()) {
    render(s);
    const c = msg.taps[s.name];
    const meta = s.box.querySelector(".meta");
    setText(meta, c ? `${s.rate ? s.rate.toFixed(1) + " Hz" : "irregular"} · ${s.columns} ch` +
      (s.step > 1 ? ` · every ${s.step}th row drawn` : "") + ` · tap: ${c.received} msgs, ${c.dropped} dropped, ${c.gaps} gaps`
      : "waiting for the producer to run");
    s.box.dataset.rows = s.rows;
  }
}

// --- latency histogram ---------------------------------------------------------------------------
function histOptions(g) {
  const sel = $("hist-node");
  const receivers = g.nodes.filter((n) => g.edges.some((e) => e.node === n.id));
  sel.innerHTML = receivers.map((n) => `<option>${n.id}</option>`).join("");
  const tapped = receivers.filter((n) => init.streams.some((s) => s.startsWith(n.id + ".")));
  if (tapped.length) sel.value = tapped.reduce((a, b) => (b.col >= a.col ? b : a)).id;
  sel.onchange = () => { pickHistStream(); sendWatch(); };
  pickHistStream();
}
function pickHistStream() {
  const node = $("hist-node").value;
  histStream = init.streams.find((s) => s.startsWith(node + ".")) || null;
}
let histKey = "";
function updateHist(msg) {
  const node = $("hist-node").value, el = $("hist"), h = msg.latency.nodes[node], edges = msg.latency.edges_ms;
  const row = msg.stats.nodes[node];
  const key = JSON.stringify([node, h, row?.p50_ms, row?.p99_ms, el.clientWidth]);
  if (key === histKey) return;
  histKey = key;
  el.innerHTML = "";
  const W = el.clientWidth || 600, H = 170, L = 34, B = 22, n = edges.length - 1;
  const lx = (ms) => L + ((Math.log10(ms) - Math.log10(edges[0])) / (Math.log10(edges[n]) - Math.log10(edges[0]))) * (W - L - 8);
  for (const ms of [0.1, 1, 10, 100, 1000]) {
    svg("line", { x1: lx(ms), x2: lx(ms), y1: 6, y2: H - B, stroke: "#eef0f3" }, el);
    svg("text", { x: lx(ms), y: H - 6, "text-anchor": ms === 1000 ? "end" : "middle" }, el).textContent = ms === 1000 ? "1 s" : `${ms} ms`;
  }
  if (!h) {
    $("hist-note").textContent = histStream ? "waiting for messages"
      : `no output to tap (a sink): heartbeat e2e p50 ${fmt(row?.p50_ms)} / p99 ${fmt(row?.p99_ms)} ms`;
    return;
  }
  $("hist-note").textContent = `newest ${h.n} messages · p50 ${h.p50_ms.toFixed(2)} / p99 ${h.p99_ms.toFixed(2)} ms (first send to this node's receive)`;
  const top = Math.max(...h.counts, 1);
  h.counts.forEach((c, i) => {
    if (!c) return;
    const x0 = lx(edges[i]), x1 = lx(edges[i + 1]), y = 6 + (1 - c / top) * (H - B - 6);
    svg("rect", { x: x0 + 0.5, y, width: Math.max(1, x1 - x0 - 1), height: H - B - y }, el).appendChild(svg("title", {})).textContent = `${edges[i].toFixed(2)}-${edges[i + 1].toFixed(2)} ms: ${c}`;
  });
  for (const [p, color] of [["p50_ms", "#16a34a"], ["p99_ms", "#dc2626"]]) {
    svg("line", { x1: lx(h[p]), x2: lx(h[p]), y1: 6, y2: H - B, stroke: color, class: "mark" }, el);
    svg("text", { x: lx(h[p]) + 3, y: 16, fill: color }, el).textContent = p.slice(0, 3);
  }
}

// --- hands ----------------------------------------------------------------------------------------
function buildHands(hands) {
  if (!hands.length) return;
  $("hands-panel").hidden = false;
  $("hands").innerHTML = hands.map((h) => `<figure><img data-hand="${h}" alt="${h}"><figcaption>${h}</figcaption></figure>`).join("");
}
function updateHands(frames) {
  for (const [node, i] of Object.entries(frames)) {
    if (i < 0 || handFrames[node] === i) continue;
    handFrames[node] = i;
    document.querySelector(`img[data-hand="${node}"]`).src = `hand/${encodeURIComponent(node)}.png?i=${i}`;
  }
}

// --- wiring ---------------------------------------------------------------------------------------
function sendWatch() {
  if (ws?.readyState !== WebSocket.OPEN) return;
  const watch = new Set(scopes.keys());
  if (histStream) watch.add(histStream);
  ws.send(JSON.stringify({ watch: [...watch] }));
}
function defaultStreams() {
  const asked = new URLSearchParams(location.search).get("watch");
  if (asked) return asked.split(",").filter((s) => init.streams.includes(s));
  const g = init.graph, picks = [];
  const source = g.nodes.find((n) => n.col === 0);
  const first = source && init.streams.find((s) => s.startsWith(source.id + "."));
  if (first) picks.push(first);
  picks.push(...init.streams.filter((s) => s.endsWith(".proba")).slice(0, 1));
  const vote = g.nodes.find((n) => n.type === "vote");
  if (vote) picks.push(...init.streams.filter((s) => s.startsWith(vote.id + ".")).slice(0, 1));
  return picks;
}
function onInit(msg) {
  init = msg;
  $("graph-name").textContent = msg.graph.name;
  document.title = `${msg.graph.name} · emgflow live view`;
  drawGraph(msg.graph);
  buildTable(msg.graph);
  buildHands(msg.hands);
  $("stream-pick").innerHTML = msg.streams.map((s) => `<option>${s}</option>`).join("");
  $("add-scope").onclick = () => addScope($("stream-pick").value);
  histOptions(msg.graph);
  for (const s of defaultStreams()) addScope(s);
  sendWatch();
  $("stop").disabled = false;
}
function onTick(msg) {
  const states = Object.values(msg.stats.nodes).map((r) => r.state);
  const status = msg.type === "end" ? (msg.exit_code ? "failed" : "ended")
    : states.includes("failed") ? "failed" : states.every((s) => s === "running" || s === "done") ? "running" : "starting";
  $("status").className = `pill ${status}`;
  $("status").textContent = msg.type !== "end" ? status
    : msg.exit_code === null ? "view closed · graph still running" : `stopped · exit ${msg.exit_code}`;
  setText($("elapsed"), `${msg.elapsed.toFixed(0)} s`);
  updateGraph(msg.stats);
  updateTable(msg.stats);
  updateScopes(msg);
  updateHist(msg);
  updateHands(msg.hands);
  if (msg.type === "end") {
    ended = true;
    document.body.dataset.ended = String(msg.exit_code);
    $("stop").disabled = true;
  }
}
function connect() {
  ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`);
  ws.onmessage = (ev) => {
    const msg = JSON.parse(ev.data);
    if (msg.type === "init") onInit(msg);
    else if (msg.type === "error") console.warn(msg.text);
    else onTick(msg);
  };
  ws.onclose = () => {
    if (!ended) { $("status").className = "pill failed"; $("status").textContent = "disconnected"; }
    $("stop").disabled = true;
  };
}
$("stop").onclick = async () => {
  $("stop").disabled = true;
  $("stop").textContent = "Stopping…";
  await fetch("api/stop", { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" });
};
connect();
