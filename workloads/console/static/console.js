// The hospital console: polls /api/overview with the console token and draws each panel.
// Everything from the API is placed with textContent (never as HTML).
"use strict";

const TOKEN_KEY = "medmec-console-token";
const charts = new Map();  // canvas id -> Chart, updated in place on each refresh
const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"];
let timer = null;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

function fmt(x, unit) { return x === null || x === undefined ? "n/a" : `${Number(x).toFixed(1)} ${unit}`; }

function chart(container, id, config, cls = "chart") {
  let canvas = document.getElementById(id);
  if (!canvas) {
    canvas = el("canvas", { id, role: "img", "aria-label": id });
    container.append(el("div", { class: cls }, canvas));
    config.options = Object.assign({ animation: false, maintainAspectRatio: false }, config.options || {});
    charts.set(id, new Chart(canvas, config));
  } else {
    const c = charts.get(id);
    c.data = config.data;
    c.update("none");
  }
}

function card(parent, key) {
  let node = parent.querySelector(`[data-key="${CSS.escape(key)}"]`);
  if (!node) { node = el("article", { class: "card", dataset: { key } }); parent.append(node); }
  return node;
}

function header(node, ...parts) {
  let head = node.querySelector(".head");
  if (!head) { head = el("div", { class: "head" }); node.prepend(head); }
  head.replaceChildren(...parts);
}

function drawBaseStations(list) {
  const root = document.getElementById("base-stations");
  for (const bs of list) {
    const node = card(root, bs.name);
    const upUsed = bs.allocations.reduce((s, a) => s + a.uplinkMbps, 0);
    const downUsed = bs.allocations.reduce((s, a) => s + a.downlinkMbps, 0);
    header(node, el("h3", { text: `${bs.name} (${bs.zone})` }),
      el("div", { class: "muted", text: bs.location }),
      el("div", { class: "alloc", text: `uplink ${upUsed}/${bs.uplinkMbps} Mbps, downlink ${downUsed}/${bs.downlinkMbps} Mbps allocated; GPUs ${bs.gpus.used}/${bs.gpus.capacity} in use` }));
    const datasets = bs.allocations.map((a, i) => ({
      label: a.slice, data: [a.uplinkMbps, a.downlinkMbps, 0], backgroundColor: COLORS[i % COLORS.length] }));
    datasets.push({ label: "GPUs in use", data: [0, 0, bs.gpus.used], backgroundColor: "#444" });
    datasets.push({ label: "free", backgroundColor: "#e3e6ea",
      data: [Math.max(0, bs.uplinkMbps - upUsed), Math.max(0, bs.downlinkMbps - downUsed), Math.max(0, bs.gpus.capacity - bs.gpus.used)] });
    chart(node, `bs-${bs.name}`, { type: "bar", data: { labels: ["uplink Mbps", "downlink Mbps", "GPUs"], datasets },
      options: { indexAxis: "y", scales: { x: { stacked: true }, y: { stacked: true } }, plugins: { legend: { position: "bottom", labels: { boxWidth: 10 } } } } });
  }
}

function drawSlices(list, history) {
  const root = document.getElementById("slices");
  for (const s of list) {
    const key = `${s.namespace}/${s.name}`;
    const node = card(root, key);
    node.dataset.qos = s.qosMet.status;
    const rows = s.measured.map(m => {
      const over = s.budget && m.rttP99Ms > s.budget.networkLatencyMs;
      return el("tr", { dataset: { baseStation: m.baseStation, meets: m.meetsBudget } },
        el("td", { text: m.baseStation }), el("td", { text: fmt(m.rttP50Ms, "ms") }),
        el("td", { text: fmt(m.rttP99Ms, "ms"), class: over ? "breach" : "" }),
        el("td", { text: fmt(m.jitterMs, "ms") }), el("td", { text: `${((m.lossRatio || 0) * 100).toFixed(1)} %` }),
        el("td", { text: m.meetsBudget }));
    });
    const budget = s.budget ? `budget ${s.budget.networkLatencyMs} ms network, ${s.budget.jitterMs} ms jitter, ${s.budget.endToEndLatencyMs} ms end to end` : "no budget";
    header(node, el("h3", {}, `${key} `, el("span", { class: "badge", dataset: { status: s.qosMet.status }, text: `QoSMet ${s.qosMet.status}` })),
      el("div", { class: "muted", text: `${s.profile}, ${s.sliceType}, ${s.priority}; ${budget}` }),
      el("div", { class: "qos-message", text: `${s.qosMet.reason}: ${s.qosMet.message || ""}` }),
      s.avoidBaseStations.length ? el("div", { class: "breach", text: `critical services kept off ${s.avoidBaseStations.join(", ")}` }) : "",
      el("table", {}, el("thead", {}, el("tr", {}, ...["base station", "p50", "p99", "jitter", "loss", "meets budget"].map(h => el("th", { text: h })))),
        el("tbody", {}, ...rows)));
    const points = history[key] || [];
    const labels = points.map(p => p.t.slice(11, 19));
    const stations = s.baseStations;
    const series = (field) => stations.map((bs, i) => ({ label: `${bs} ${field === "rttP99Ms" ? "p99" : "jitter"}`,
      data: points.map(p => (p.links[bs] || {})[field] ?? null), borderColor: COLORS[i % COLORS.length],
      borderDash: field === "jitterMs" ? [2, 3] : [], pointRadius: 0, spanGaps: true }));
    const limit = (value, label) => ({ label, data: points.map(() => value), borderColor: "#b3261e", borderDash: [6, 4], pointRadius: 0 });
    const datasets = [...series("rttP99Ms"), ...series("jitterMs")];
    if (s.budget) datasets.push(limit(s.budget.networkLatencyMs, "latency budget"), limit(s.budget.jitterMs, "jitter budget"));
    chart(node, `slice-${s.namespace}-${s.name}`, { type: "line", data: { labels, datasets },
      options: { scales: { y: { title: { display: true, text: "ms" }, beginAtZero: true } }, plugins: { legend: { position: "bottom", labels: { boxWidth: 10 } } } } }, "chart tall");
  }
}

function drawInference(list) {
  document.querySelector("#inference tbody").replaceChildren(...list.map(e => el("tr", { dataset: { key: `${e.namespace}/${e.name}` } },
    el("td", { text: `${e.namespace}/${e.name}` }), el("td", { text: e.slice }), el("td", { text: e.model }),
    el("td", { text: e.version }), el("td", { text: e.canary || "-" }),
    el("td", { text: `${e.readyReplicas} / ${e.replicas} (min ${e.minReplicas})`, class: e.readyReplicas < e.minReplicas ? "breach" : "" }),
    el("td", { text: e.zones.join(", ") || "-" }), el("td", { text: fmt(e.p99Ms, "ms") }), el("td", { text: e.phase }))));
}

function drawFleets(list) {
  const root = document.getElementById("fleets");
  for (const f of list) {
    const key = `${f.namespace}/${f.name}`;
    const node = card(root, key);
    header(node, el("h3", { text: key }), el("div", { class: "muted", text: f.live ? "live positions from the dispatcher" : "dispatcher unreachable: robots shown at their home node" }));
    const floors = [...new Set(f.map.nodes.map(n => n.floor))].sort();
    const byId = Object.fromEntries(f.map.nodes.map(n => [n.id, n]));
    // floors side by side: x is shifted by floor so the map reads as a plan of each floor
    const span = Math.max(10, ...f.map.nodes.map(n => n.x)) + 20;
    const pos = n => ({ x: n.x + span * floors.indexOf(n.floor), y: n.y, label: n.id });
    const datasets = [
      ...f.map.edges.filter(e => byId[e.from] && byId[e.to]).map(e => ({ type: "line", data: [pos(byId[e.from]), pos(byId[e.to])],
        borderColor: e.single_lane ? "#d98c00" : "#9aa3ad", pointRadius: 0, showLine: true, label: "corridor" })),
      { label: "places", data: f.map.nodes.map(n => pos(n)), backgroundColor: "#5b6470", pointRadius: 4 },
      { label: "robots", data: f.robots.filter(r => byId[r.node]).map(r => ({ ...pos(byId[r.node]), label: `${r.id} (${r.state})` })), backgroundColor: "#d62728", pointRadius: 9, pointStyle: "rectRot" },
    ];
    chart(node, `map-${f.namespace}-${f.name}`, { type: "scatter", data: { datasets },
      options: { plugins: { legend: { display: false }, tooltip: { callbacks: { label: c => c.raw.label } } },
        scales: { x: { title: { display: true, text: floors.map(fl => `floor ${fl}`).join("  |  ") } } } } }, "chart map");
    let tasks = node.querySelector("table.tasks");
    if (!tasks) { tasks = el("table", { class: "tasks" }); node.append(tasks); }
    const robotRows = f.robots.map(r => el("tr", { dataset: { robot: r.id } }, el("td", { text: r.id }), el("td", { text: r.node || "?" }),
      el("td", { text: r.state }), el("td", { text: r.battery == null ? "n/a" : `${Math.round(r.battery)} %` }),
      el("td", { text: r.queue.length ? `queue: ${r.queue.join(", ")}` : "idle" })));
    const taskRows = f.tasks.map(t => el("tr", {}, ...["id", "kind", "priority", "pickup", "dropoff", "robot", "state"].map(k => el("td", { text: t[k] ?? "" }))));
    tasks.replaceChildren(el("caption", { text: `robots (${f.robots.length}) and task queue (${f.tasks.length})` }),
      el("tbody", {}, ...robotRows, ...taskRows));
  }
}

function drawAlerts(list) {
  const root = document.getElementById("alerts");
  root.replaceChildren(...(list.length ? list.map(a => el("li", { dataset: { risk: a.risk || "" } },
    el("strong", { text: `ward ${a.ward}: ${a.risk} risk, NEWS2 ${a.score}` }),
    el("span", { class: "muted", text: ` raised ${a.raised_at}${a.acknowledged_at ? ", acknowledged" : ""}` }),
    el("div", { text: Object.entries(a.parameters || {}).map(([k, v]) => `${k} ${v}`).join(", ") })))
    : [el("li", { class: "muted", text: "no open alerts" })]));
}

function drawAmbulances(list) {
  const clock = t => t ? ` (${new Date(t).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })})` : "";
  const eta = (s, t) => s == null ? "n/a" : `${Math.floor(s / 60)} min ${s % 60} s${clock(t)}`;
  document.querySelector("#ambulances tbody").replaceChildren(...(list.length ? list.map(a => el("tr", { dataset: { key: `${a.namespace}/${a.name}`, risk: a.risk || "" } },
    el("td", { text: a.callSign ? `${a.vehicle} (${a.callSign})` : a.vehicle }), el("td", { text: a.ward || "-" }),
    el("td", { text: eta(a.etaSeconds, a.expectedArrival) }), el("td", { text: a.news2 == null ? "n/a" : `${a.news2} (${a.risk})` }),
    el("td", { text: a.trend || "n/a" }), el("td", { text: String(a.openAlerts) }),
    el("td", { text: a.servingBaseStation || "?" }), el("td", { text: a.edgeSite || "?" }),
    el("td", { text: a.following.status === "True" ? "following" : `stays: ${a.following.reason || "unknown"}`,
      title: a.following.message || "", class: a.following.status === "True" ? "" : "breach" })))
    : [el("tr", {}, el("td", { class: "muted", text: "no ambulance on its way", colSpan: 9 }))]));
}

function draw(data) {
  document.getElementById("refreshed").textContent = `updated ${data.generatedAt}`;
  document.getElementById("problems").replaceChildren(...data.problems.map(p => el("li", { text: p })));
  drawBaseStations(data.baseStations);
  drawSlices(data.slices, data.history);
  drawInference(data.inference);
  drawFleets(data.fleets);
  drawAmbulances(data.ambulances || []);
  drawAlerts(data.alerts);
  document.body.dataset.ready = "true";
}

function showLogin(message) {
  clearTimeout(timer);
  document.getElementById("console").hidden = true;
  document.getElementById("logout").hidden = true;
  document.getElementById("login").hidden = false;
  document.getElementById("login-error").textContent = message || "";
}

async function refresh() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (!token) return showLogin();
  let wait = 5;
  try {
    const response = await fetch("/api/overview", { headers: { Authorization: `Bearer ${token}` }, cache: "no-store" });
    if (response.status === 401) { sessionStorage.removeItem(TOKEN_KEY); return showLogin("That token was refused."); }
    if (response.ok) {
      const data = await response.json();
      wait = data.refreshSeconds;
      document.getElementById("login").hidden = true;
      document.getElementById("console").hidden = false;
      document.getElementById("logout").hidden = false;
      draw(data);
    } else {
      wait = 1;
    }
  } catch (err) {
    document.getElementById("refreshed").textContent = `console unreachable (${err.message}); retrying`;
  }
  timer = setTimeout(refresh, wait * 1000);
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("login-form").addEventListener("submit", ev => {
    ev.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, document.getElementById("token").value.trim());
    refresh();
  });
  document.getElementById("logout").addEventListener("click", () => { sessionStorage.removeItem(TOKEN_KEY); showLogin(); });
  refresh();
});
