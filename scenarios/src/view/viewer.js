// Page set-up: reads the embedded data, builds per-lane arrays, wires zoom, pan, filters,
// hover and click, the violation banner, and exposes window.detsimView for tests.

const D = JSON.parse(document.getElementById("trace-data").textContent);
const $ = function (id) { return document.getElementById(id); };
const EV_NAMES = ["start", "deliver", "timer", "input", "drop", "fault", "note"];
const FATES = ["delivered", "lost at send", "dropped at delivery", "in flight at the end"];

function columns(rows, cols) {
  const out = {};
  for (const [name, type, idx] of cols) {
    const a = type === "f" ? new Float64Array(rows.length) : type === "i" ? new Int32Array(rows.length) : type === "u" ? new Uint8Array(rows.length) : new Array(rows.length);
    for (let i = 0; i < rows.length; i++) a[i] = rows[i][idx];
    out[name] = a;
  }
  return out;
}

function byTime(rows, col) {
  return rows.slice().sort(function (a, b) { return a[col] - b[col]; });
}

const V = {
  t0: 0, t1: 1, scale: 1, W: 800, H: 300, dpr: window.devicePixelRatio || 1,
  sel: null, hidden: [], kindOff: [], pending: false,
  violation: D.violation, periods: D.periods, end: Math.max(1, D.meta.end),
  chain: D.explain ? D.explain.chain : [], chainAt: -1,
};

(function build() {
  const N = D.nodes.length;
  V.lane = D.nodes.map(function (nd) { return { name: nd.name, client: nd.client, roles: [], down: [], ops: [] }; });
  const evs = D.ev.filter(function (e) { return e[1] >= 0; });
  const glob = D.ev.filter(function (e) { return e[1] < 0; });
  const perLane = function (rows, col) {
    const out = [];
    for (let i = 0; i < N; i++) out.push([]);
    for (const r of rows) if (r[col] >= 0 && r[col] < N) out[r[col]].push(r);
    return out;
  };
  const laneEv = perLane(evs, 1), laneMarks = perLane(D.marks, 0), laneDots = perLane(D.dots, 0);
  const laneOps = perLane(D.ops, 0), laneRoles = perLane(D.roles, 0), laneDown = perLane(D.down, 0);
  for (let n = 0; n < N; n++) {
    const L = V.lane[n];
    L.ev = columns(byTime(laneEv[n], 0), [["t", "f", 0], ["kind", "u", 2], ["rec", "i", 3]]);
    const mk = byTime(laneMarks[n], 1).map(function (m) { return [m[1], m[2] === "commit" ? 0 : 1, m[4], m[3]]; });
    L.marks = columns(mk, [["t", "f", 0], ["kind", "u", 1], ["rec", "i", 2], ["label", "a", 3]]);
    L.dots = columns(byTime(laneDots[n], 1), [["t", "f", 1], ["key", "a", 2], ["rec", "i", 3], ["out", "i", 4]]);
    L.ops = byTime(laneOps[n], 1).map(function (o) { return [o[1], o[2] < 0 ? V.end : o[2], o[3], o[4], o[5]]; });
    L.down = laneDown[n].map(function (d) { return [d[1], d[2], d[3], d[4], d[5], d[5]]; });
    // role segments end at the next role change or at a crash
    const crashes = L.down.filter(function (d) { return d[2] === "crash"; }).map(function (d) { return d[0]; });
    const rs = byTime(laneRoles[n], 1);
    L.roles = rs.map(function (r, i) {
      let end = i + 1 < rs.length ? rs[i + 1][1] : V.end;
      for (const c of crashes) if (c >= r[1] && c < end) end = c;
      return [r[1], end, r[2], r[3], r[4]];
    });
  }
  V.global = columns(byTime(glob, 0), [["t", "f", 0], ["kind", "u", 2], ["rec", "i", 3]]);
  const msgs = byTime(D.msgs, 2);
  V.m = columns(msgs, [["from", "i", 0], ["to", "i", 1], ["t0", "f", 2], ["t1", "f", 3], ["fate", "u", 4],
    ["flags", "u", 5], ["kind", "i", 6], ["recS", "i", 7], ["recE", "i", 8], ["id", "f", 9]]);
  V.maxSpan = 0;
  for (let i = 0; i < msgs.length; i++) V.maxSpan = Math.max(V.maxSpan, V.m.t1[i] - V.m.t0[i]);
  V.visMsgs = new Int32Array(msgs.length);
  V.visCount = 0;
  V.nToRec = new Map();
  D.recs.forEach(function (r, i) { if (r && typeof r.n === "number") V.nToRec.set(r.n, i); });
  V.visible = [];
  V.laneY = new Float64Array(N).fill(-1);
  V.t0 = 0; V.t1 = V.end * 1.02;
})();

const canvas = $("lanes");
V.ctx = canvas.getContext("2d");

function requestRender() {
  if (V.pending) return;
  V.pending = true;
  requestAnimationFrame(render);
}

function layout() {
  V.visible = [];
  V.laneY.fill(-1);
  D.nodes.forEach(function (_, n) { if (!V.hidden[n]) V.visible.push(n); });
  const labels = $("labels");
  V.visible.forEach(function (n, i) { V.laneY[n] = RULER_H + 8 + LANE_H * i + LANE_H / 2; });
  V.H = RULER_H + 16 + LANE_H * Math.max(1, V.visible.length);
  V.W = Math.max(200, $("canvas-box").clientWidth);
  canvas.width = Math.round(V.W * V.dpr); canvas.height = Math.round(V.H * V.dpr);
  canvas.style.width = V.W + "px"; canvas.style.height = V.H + "px";
  labels.style.height = V.H + "px";
  for (const el of labels.querySelectorAll(".lane-label")) {
    const n = +el.dataset.node;
    el.hidden = V.laneY[n] < 0;
    el.style.top = V.laneY[n] + "px";
  }
  syncTimeInputs();
  requestRender();
}

function setView(t0, t1) {
  const minSpan = 5, maxSpan = V.end * 1.5;
  let span = Math.min(maxSpan, Math.max(minSpan, t1 - t0));
  const mid = (t0 + t1) / 2;
  t0 = mid - span / 2;
  t0 = Math.max(-V.end * 0.2, Math.min(t0, V.end * 1.2 - span));
  V.t0 = t0; V.t1 = t0 + span;
  V.scale = (V.W - PAD_L - PAD_R) / (V.t1 - V.t0);
  syncTimeInputs();
  requestRender();
}

function trimNum(x) { return String(+(x / 1e6).toFixed(6)); }
function syncTimeInputs() { $("t-from").value = trimNum(Math.max(0, V.t0)); $("t-to").value = trimNum(V.t1); }

// ---- details --------------------------------------------------------------------------
function esc(s) { return String(s).replace(/[&<>"]/g, function (c) { return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c]; }); }
function pretty(v) { return JSON.stringify(v, null, 2); }
function nodeName(n) { return n >= 0 && n < D.nodes.length ? D.nodes[n].name : "-"; }
function recTitle(r) {
  if (!r) return "?";
  let what = r.type;
  if (r.type === "step") what = r.input.kind;
  if (r.type === "fault") what = "fault " + JSON.stringify(r.fault);
  if (r.type === "drop") what = "drop (" + r.cause + ") of message " + r.id;
  const node = r.node !== undefined ? nodeName(r.node) : r.to !== undefined ? nodeName(r.to) : "";
  return "event n=" + r.n + " · " + fmtSecs(r.t) + (node ? " · " + node : "") + " · " + what;
}
function evLink(rec, label) { return rec >= 0 && D.recs[rec] ? '<a data-rec="' + rec + '">' + esc(label || "n=" + D.recs[rec].n) + "</a>" : ""; }

// [title, sub-title html, payloads [[caption, value]]]
function describe(s) {
  if (s.type === "ev") { const r = D.recs[s.rec]; return [recTitle(r), "", [["record", r]]]; }
  if (s.type === "msg") {
    const M = V.m, i = s.i, sr = D.recs[M.recS[i]], er = M.recE[i] >= 0 ? D.recs[M.recE[i]] : null;
    const send = ((sr && sr.out) || []).map(function (o) { return o.send; }).find(function (o) { return o && o.id === M.id[i]; });
    const delay = ((M.t1[i] - M.t0[i]) / 1000).toFixed(3);
    const flags = [(M.flags[i] & 1) ? "duplicated" : "", (M.flags[i] & 2) ? "long delay (> " + D.meta.long_factor + "× median)" : ""].filter(Boolean).join(", ");
    const title = "message id=" + M.id[i] + " " + D.kinds[M.kind[i]] + " " + nodeName(M.from[i]) + " → " + nodeName(M.to[i]);
    const sub = "sent " + evLink(M.recS[i]) + " at " + fmtSecs(M.t0[i]) + " · " + FATES[M.fate[i]] +
      (er ? " " + evLink(M.recE[i]) + " at " + fmtSecs(M.t1[i]) + " (delay " + delay + " ms)" : "") + (flags ? " · " + flags : "");
    const out = [["message", send ? send.msg : null], ["send output", send]];
    if (er) out.push([er.type === "drop" ? "drop record" : "delivery record", er]);
    return [title, sub, out];
  }
  const L = s.node >= 0 ? V.lane[s.node] : null;
  if (s.type === "mark") { const r = D.recs[L.marks.rec[s.j]]; return [L.marks.label[s.j] + " on " + L.name, evLink(L.marks.rec[s.j], recTitle(r)), [["record", r]]]; }
  if (s.type === "dot") {
    const r = D.recs[L.dots.rec[s.j]], o = r && r.out ? r.out[L.dots.out[s.j]] : null;
    return ["observation " + L.dots.key[s.j] + " on " + L.name, evLink(L.dots.rec[s.j], recTitle(r)), [["observation", o ? o.obs : null], ["record", r]]];
  }
  if (s.type === "op") {
    const o = L.ops[s.j], ri = D.recs[o[2]], rc = o[3] >= 0 ? D.recs[o[3]] : null;
    const sub = "invoked " + evLink(o[2]) + " at " + fmtSecs(o[0]) + (rc ? " · returned " + evLink(o[3]) + " at " + fmtSecs(o[1]) : " · pending at the end");
    return ["client operation on " + L.name + ": " + o[4], sub, [["invocation", ri], ["completion", rc]]];
  }
  if (s.type === "down") {
    const d = s.d;
    return [(d[2] === "crash" ? "crashed" : "disconnected") + ": " + L.name, "from " + evLink(d[3]) + " at " + fmtSecs(d[0]) + (d[4] >= 0 ? " to " + evLink(d[4]) + " at " + fmtSecs(d[1]) : " to the end"), [["fault", D.recs[d[3]]]]];
  }
  if (s.type === "role") {
    const r = s.s;
    return [L.name + " " + r[2] + " in term " + r[3], "from " + evLink(r[4]) + " at " + fmtSecs(r[0]) + " until " + fmtSecs(r[1]), [["record", D.recs[r[4]]]]];
  }
  if (s.type === "period") {
    const p = s.p;
    return [p[2], "from " + evLink(p[4]) + " at " + fmtSecs(p[0]) + (p[5] >= 0 ? " until " + evLink(p[5]) + " at " + fmtSecs(p[1]) : " until the end"), [["fault", D.recs[p[4]]]]];
  }
  return ["?", "", []];
}

function showDetails(s) {
  const d = describe(s);
  let h = '<div class="title">' + esc(d[0]) + '</div><div class="sub">' + d[1] + "</div>";
  for (const [cap, v] of d[2]) if (v !== null && v !== undefined) h += '<div class="sub">' + esc(cap) + "</div><pre>" + esc(pretty(v)) + "</pre>";
  $("details").innerHTML = h;
}

function selectObj(s, center) {
  V.sel = s;
  if (center && s.t !== undefined && (s.t < V.t0 || s.t > V.t1)) {
    const span = V.t1 - V.t0;
    setView(s.t - span / 2, s.t + span / 2);
  }
  showDetails(s);
  requestRender();
}

function selectRec(rec, center) {
  const r = D.recs[rec];
  if (!r) return false;
  let node = -1;
  if (r.type === "step") node = r.node;
  else if (r.type === "drop") node = r.to;
  else if (r.type === "fault" && r.fault && typeof r.fault === "object") {
    const v = Object.values(r.fault)[0];
    if (typeof v === "number") node = v;
  }
  selectObj({ type: "ev", rec: rec, t: r.t, node: node }, center);
  return true;
}

function selectN(n) {
  const rec = V.nToRec.get(+n);
  return rec === undefined ? false : selectRec(rec, true);
}

$("details").addEventListener("click", function (e) {
  const a = e.target.closest("a[data-rec]");
  if (a) selectRec(+a.dataset.rec, true);
});

// ---- interaction ----------------------------------------------------------------------
const tip = $("tip");
let drag = null;
function pos(e) { const b = canvas.getBoundingClientRect(); return [e.clientX - b.left, e.clientY - b.top]; }

canvas.addEventListener("wheel", function (e) {
  e.preventDefault();
  const [x] = pos(e), t = T(x), f = Math.exp((e.deltaY || 0) * 0.0015);
  setView(t - (t - V.t0) * f, t + (V.t1 - t) * f);
}, { passive: false });

canvas.addEventListener("mousedown", function (e) {
  const [x, y] = pos(e);
  drag = { x: x, y: y, t0: V.t0, t1: V.t1, moved: false };
  canvas.classList.add("dragging");
});
window.addEventListener("mousemove", function (e) {
  const [x, y] = pos(e);
  if (drag) {
    if (Math.abs(x - drag.x) > 3 || Math.abs(y - drag.y) > 3) drag.moved = true;
    if (drag.moved) {
      const dt = (x - drag.x) / V.scale;
      setView(drag.t0 - dt, drag.t1 - dt);
      tip.hidden = true;
    }
    return;
  }
  if (e.target !== canvas) { tip.hidden = true; return; }
  const s = hitTest(x, y);
  if (!s) { tip.hidden = true; canvas.style.cursor = ""; return; }
  canvas.style.cursor = "pointer";
  const d = describe(s);
  let text = d[0];
  const main = d[2].find(function (p) { return p[1] !== null && p[1] !== undefined; });
  if (main) text += "\n" + pretty(main[1]).split("\n").slice(0, 24).join("\n");
  tip.textContent = text;
  tip.hidden = false;
  tip.style.left = Math.min(x + 14, V.W - 430) + "px";
  tip.style.top = (y + 14) + "px";
});
window.addEventListener("mouseup", function (e) {
  if (!drag) return;
  const wasDrag = drag.moved;
  drag = null;
  canvas.classList.remove("dragging");
  if (wasDrag || e.target !== canvas) return;
  const [x, y] = pos(e), s = hitTest(x, y);
  if (s) selectObj(s, false);
});
canvas.addEventListener("mouseleave", function () { tip.hidden = true; });
window.addEventListener("resize", function () { const span = V.t1 - V.t0; layout(); setView(V.t0, V.t0 + span); });

// ---- filters, legend, header, banner -------------------------------------------------
function checkbox(parent, label, color, onChange, cls) {
  const l = document.createElement("label");
  const c = document.createElement("input");
  c.type = "checkbox"; c.checked = true;
  c.addEventListener("change", function () { onChange(c.checked); });
  l.appendChild(c);
  if (color) { const sw = document.createElement("span"); sw.className = "swatch"; sw.style.background = color; l.appendChild(sw); }
  l.appendChild(document.createTextNode(label));
  if (cls) l.className = cls;
  parent.appendChild(l);
  return c;
}

D.nodes.forEach(function (nd, n) {
  checkbox($("f-nodes"), nd.name + (nd.client ? " (client)" : ""), null, function (on) { V.hidden[n] = !on; layout(); }, "node-filter");
  const el = document.createElement("div");
  el.className = "lane-label" + (nd.client ? " client" : "");
  el.dataset.node = n;
  el.innerHTML = esc(nd.name) + "<small>" + (nd.client ? "client" : "server") + "</small>";
  el.title = "click: hide this lane";
  el.addEventListener("click", function () { V.hidden[n] = true; $("f-nodes").querySelectorAll("input")[n].checked = false; layout(); });
  $("labels").appendChild(el);
});
D.kinds.forEach(function (k, i) {
  checkbox($("f-kinds"), k, kindColor(i), function (on) { V.kindOff[i] = !on; requestRender(); }, "kind-filter");
});
if (!D.kinds.length) $("f-kinds").appendChild(document.createTextNode("none"));
$("t-apply").addEventListener("click", function () {
  const a = parseFloat($("t-from").value) * 1e6, b = parseFloat($("t-to").value) * 1e6;
  if (isFinite(a) && isFinite(b) && b > a) setView(a, b);
});
$("t-reset").addEventListener("click", function () { setView(0, V.end * 1.02); });
for (const id of ["t-from", "t-to"]) $(id).addEventListener("keydown", function (e) { if (e.key === "Enter") $("t-apply").click(); });

$("legend").innerHTML = [
  "<span>→ message (colour = kind)</span>", "<span style='color:#d32f2f'>✕ lost / dropped</span>",
  "<span>- - - duplicated</span>", "<span>··· ○ in flight at the end</span>", "<span style='color:#ef6c00'>━ delay &gt; " + D.meta.long_factor + "× median (" + (D.meta.median_delay / 1000).toFixed(1) + " ms)</span>",
  "<span>lane colour = term, thick = leader</span>", "<span>gap = crashed</span>", "<span>shaded = partition / cut</span>",
  "<span>▲ commit ▼ applied ● other observation</span>", "<span>bar above lane = client op</span>", "<span>▼ on ruler = note / network fault</span>",
].join(" ");

$("meta").innerHTML = esc((D.meta.scenario || "?") + " · seed " + D.meta.seed + " · " + D.recs.length + " records" +
  (D.meta.skipped ? " (the first " + D.meta.skipped + " not drawn)" : "") + " · " + D.msgs.length + " message arrows · end " + fmtSecs(D.meta.end, 3) + " · ") +
  '<span class="' + esc(D.meta.verdict) + '">' + esc(D.meta.verdict) + "</span>";

function jumpToViolation() {
  const v = D.violation;
  const span = Math.min(V.end * 1.02, Math.max(2000, 15 * (D.meta.median_delay || 1000)));
  setView(v.time - span * 0.7, v.time + span * 0.3);
  if (v.rec >= 0) selectRec(v.rec, true);
  canvas.scrollIntoView({ block: "nearest" });
}

if (D.violation) {
  const v = D.violation;
  $("banner").hidden = false;
  $("banner-text").innerHTML = "<strong>Violation: " + esc(v.property) + "</strong> — " + esc(v.detail) +
    " · nodes " + esc(v.names.join(", ") || "none") + " · at " + esc(fmtSecs(v.time)) + " · event n=" + esc(v.event);
  $("jump").addEventListener("click", jumpToViolation);
}

// ---- the explanation: facts, and stepping through the chain ---------------------------
function chainStep(k) {
  const ch = V.chain;
  if (!ch.length) return false;
  V.chainAt = Math.max(0, Math.min(ch.length - 1, k));
  const e = ch[V.chainAt];
  if (e.rec >= 0) selectRec(e.rec, true);
  else { const span = V.t1 - V.t0; setView(e.t - span / 2, e.t + span / 2); }
  $("chain-pos").textContent = "step " + (V.chainAt + 1) + " of " + ch.length + ": " + fmtSecs(e.t, 3) + " n=" + e.n + " " + nodeName(e.node === null ? -1 : e.node) + " " + e.what;
  $("chain-list").querySelectorAll("li").forEach(function (li, i) { li.classList.toggle("current", i === V.chainAt); });
  $("chain-prev").disabled = V.chainAt === 0;
  $("chain-next").disabled = V.chainAt === ch.length - 1;
  requestRender();
  return true;
}

if (D.explain) {
  const x = D.explain;
  $("explain").hidden = false;
  $("explain-facts").innerHTML = x.facts.map(function (f) { return "<li>" + esc(f) + "</li>"; }).join("");
  $("chain-how").textContent = x.chain.length ? "chain: " + x.chosen : "";
  $("chain-list").innerHTML = x.chain.map(function (e, k) {
    return '<li data-k="' + k + '"><span class="when">' + esc(fmtSecs(e.t, 3) + " n=" + e.n + " " + nodeName(e.node === null ? -1 : e.node)) + "</span> " + esc(e.what) + "</li>";
  }).join("");
  $("chain-list").addEventListener("click", function (e) {
    const li = e.target.closest("li[data-k]");
    if (li) chainStep(+li.dataset.k);
  });
  $("chain-prev").addEventListener("click", function () { chainStep(V.chainAt - 1); });
  $("chain-next").addEventListener("click", function () { chainStep(V.chainAt + 1); });
  $("chain-nav").hidden = !x.chain.length;
  $("chain-pos").textContent = x.chain.length ? x.chain.length + " events: next ▶ steps through them" : "";
  window.addEventListener("keydown", function (e) {
    if (e.target && (e.target.tagName === "INPUT")) return;
    if (e.key === "]" || e.key === "n") chainStep(V.chainAt + 1);
    if (e.key === "[" || e.key === "p") chainStep(V.chainAt - 1);
  });
}

layout();
setView(0, V.end * 1.02);
renderLin(D.lin);

window.detsimView = {
  lanes: D.nodes.length,
  arrows: D.msgs.length,
  events: D.ev.length,
  select: selectN,
  // the viewport coordinates of the middle of a message arrow in view (for tests), or null
  visibleArrow: function () {
    render();
    const b = canvas.getBoundingClientRect();
    for (let j = 0; j < V.visCount; j++) {
      const s = arrowSeg(V.visMsgs[j]);
      if (Math.hypot(s[2] - s[0], s[3] - s[1]) < 30) continue;
      const x = (s[0] + s[2]) / 2, y = (s[1] + s[3]) / 2;
      if (x < 0 || x > V.W || b.top + y < 0 || b.top + y > window.innerHeight || b.left + x > window.innerWidth) continue;
      const h = hitTest(x, y);
      if (h && h.type === "msg") return { x: b.left + x, y: b.top + y, id: V.m.id[h.i] };
    }
    return null;
  },
  // arrows drawn in the current view, and how long that frame took (ms)
  drawn: function () { const a = performance.now(); render(); return { arrows: V.visCount, ms: performance.now() - a }; },
  view: function () { return { t0: V.t0, t1: V.t1 }; },
  setView: setView,
  selected: function () { return V.sel; },
  // the explanation's chain: its events, the current step (-1 before the first), stepping
  chain: function () { return { events: V.chain.map(function (e) { return { rec: e.rec, n: e.n, node: e.node }; }), at: V.chainAt }; },
  chainStep: chainStep,
};
