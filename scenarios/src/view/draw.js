// Canvas drawing and hit testing of the space-time diagram. Everything here reads the view
// state `V` built by viewer.js; only what is in view is drawn (binary search by time).

const RULER_H = 28;
const PAD_L = 10;
const PAD_R = 14;
const LANE_H = 52;
const ARROW_CAP = 3000;
const KIND_COLORS = ["#1565c0", "#2e7d32", "#6a1b9a", "#00838f", "#ad1457", "#5d4037",
  "#283593", "#558b2f", "#4527a0", "#00695c", "#37474f", "#9e9d24"];
const EV_COLORS = ["#2e7d32", "#455a64", "#b0bec5", "#7b1fa2", "#c62828", "#c62828", "#ef6c00"];

function lowerBound(a, x, lo, hi) {
  lo = lo || 0; hi = hi === undefined ? a.length : hi;
  while (lo < hi) { const m = (lo + hi) >> 1; if (a[m] < x) lo = m + 1; else hi = m; }
  return lo;
}
function upperBound(a, x, lo, hi) {
  lo = lo || 0; hi = hi === undefined ? a.length : hi;
  while (lo < hi) { const m = (lo + hi) >> 1; if (a[m] <= x) lo = m + 1; else hi = m; }
  return lo;
}
function X(t) { return PAD_L + (t - V.t0) * V.scale; }
function T(x) { return V.t0 + (x - PAD_L) / V.scale; }
function laneY(node) { return V.laneY[node]; }
function termColor(term, light) {
  const h = (term * 67 + 200) % 360;
  return light ? "hsl(" + h + ",45%,78%)" : "hsl(" + h + ",75%,42%)";
}
function kindColor(k) { return KIND_COLORS[k % KIND_COLORS.length]; }

function fmtSecs(t, decimals) { return (t / 1e6).toFixed(decimals === undefined ? 6 : decimals) + "s"; }

function render() {
  V.pending = false;
  const c = V.ctx, W = V.W, H = V.H;
  c.setTransform(V.dpr, 0, 0, V.dpr, 0, 0);
  c.clearRect(0, 0, W, H);
  c.fillStyle = "#fff";
  c.fillRect(0, 0, W, H);
  V.scale = (W - PAD_L - PAD_R) / (V.t1 - V.t0);
  drawPeriods(c, H);
  drawLanes(c);
  drawArrows(c);
  drawLaneItems(c);
  drawRuler(c, W);
  drawViolation(c, H);
  drawChain(c);
  drawSelection(c);
  if (V.stride > 1) {
    const msg = "showing 1 in " + V.stride + " of " + V.inView + " messages in view: zoom in to see all";
    c.font = "11px system-ui"; c.textBaseline = "bottom";
    const w = c.measureText(msg).width;
    c.fillStyle = "rgba(255,248,225,0.92)"; c.fillRect(W - w - 16, H - 18, w + 12, 16);
    c.fillStyle = "#8d6e00"; c.fillText(msg, W - w - 10, H - 4);
  }
}

function drawPeriods(c, H) {
  c.font = "11px system-ui, sans-serif";
  c.textBaseline = "top";
  V.periods.forEach(function (p, i) {
    if (p[1] < V.t0 || p[0] > V.t1) return;
    const x0 = Math.max(0, X(p[0])), x1 = Math.min(V.W, X(p[1]));
    c.fillStyle = p[3] === "partition" ? "rgba(255,167,38,0.16)" : "rgba(92,107,192,0.13)";
    c.fillRect(x0, RULER_H, Math.max(1, x1 - x0), H - RULER_H);
    c.strokeStyle = p[3] === "partition" ? "rgba(239,108,0,0.6)" : "rgba(57,73,171,0.55)";
    c.beginPath(); c.moveTo(X(p[0]) + 0.5, RULER_H); c.lineTo(X(p[0]) + 0.5, H); c.stroke();
    c.fillStyle = p[3] === "partition" ? "#e65100" : "#303f9f";
    c.save();
    c.beginPath(); c.rect(x0, RULER_H, Math.max(1, x1 - x0), H - RULER_H); c.clip();
    c.fillText(p[2], x0 + 4, RULER_H + 2 + (i % 3) * 12);
    c.restore();
  });
}

function drawLanes(c) {
  for (const node of V.visible) {
    const y = laneY(node), L = V.lane[node];
    c.fillStyle = L.client ? "rgba(106,27,154,0.05)" : "rgba(0,0,0,0.018)";
    c.fillRect(0, y - LANE_H / 2 + 2, V.W, LANE_H - 4);
    c.strokeStyle = "#9aa3ad"; c.lineWidth = 1;
    c.beginPath(); c.moveTo(0, y + 0.5); c.lineTo(V.W, y + 0.5); c.stroke();
    // role segments: colour = term, leaders thick
    for (const s of L.roles) {
      if (s[1] < V.t0 || s[0] > V.t1) continue;
      const x0 = Math.max(-5, X(s[0])), x1 = Math.min(V.W + 5, X(s[1]));
      const leader = s[2] === "leader";
      c.fillStyle = termColor(s[3], !leader);
      const h = leader ? 10 : s[2] === "candidate" ? 5 : 3;
      c.fillRect(x0, y - h / 2, Math.max(1, x1 - x0), h);
      if (leader) {
        c.strokeStyle = "#111"; c.lineWidth = 1;
        c.strokeRect(x0 + 0.5, y - h / 2 + 0.5, Math.max(1, x1 - x0 - 1), h - 1);
      }
      if (x1 - x0 > 60) {
        c.fillStyle = leader ? "#111" : "#555";
        c.font = (leader ? "bold " : "") + "10px system-ui, sans-serif";
        c.textBaseline = "bottom";
        c.fillText((leader ? "LEADER" : s[2]) + " t" + s[3], Math.max(x0, 0) + 3, y - 6);
      }
    }
    // down periods break the lane
    for (const d of L.down) {
      if (d[1] < V.t0 || d[0] > V.t1) continue;
      const x0 = X(d[0]), x1 = X(d[1]);
      if (d[2] === "crash") {
        c.fillStyle = "#fff";
        c.fillRect(x0, y - 7, Math.max(1, x1 - x0), 14);
        c.strokeStyle = "#bbb"; c.setLineDash([3, 4]);
        c.beginPath(); c.moveTo(x0, y + 0.5); c.lineTo(x1, y + 0.5); c.stroke(); c.setLineDash([]);
        cross(c, x0, y, 6, "#c62828", 2.5);
        if (d[5] >= 0) { c.fillStyle = "#2e7d32"; c.beginPath(); c.moveTo(x1, y - 6); c.lineTo(x1 + 9, y); c.lineTo(x1, y + 6); c.fill(); }
        if (x1 - x0 > 50) { c.fillStyle = "#c62828"; c.font = "10px system-ui"; c.textBaseline = "bottom"; c.fillText("crashed", x0 + 9, y - 3); }
      } else {
        c.strokeStyle = "#c62828"; c.setLineDash([2, 3]); c.lineWidth = 2;
        c.beginPath(); c.moveTo(x0, y + 4); c.lineTo(x1, y + 4); c.stroke(); c.setLineDash([]); c.lineWidth = 1;
        if (x1 - x0 > 70) { c.fillStyle = "#c62828"; c.font = "10px system-ui"; c.textBaseline = "top"; c.fillText("disconnected", x0 + 3, y + 6); }
      }
    }
  }
}

function cross(c, x, y, r, color, w) {
  c.strokeStyle = color; c.lineWidth = w || 2;
  c.beginPath(); c.moveTo(x - r, y - r); c.lineTo(x + r, y + r); c.moveTo(x + r, y - r); c.lineTo(x - r, y + r); c.stroke();
  c.lineWidth = 1;
}

// The drawn segment of message i: [x0, y0, x1, y1] (lost messages stop half-way).
function arrowSeg(i) {
  const M = V.m, y0 = laneY(M.from[i]);
  let y1 = laneY(M.to[i]);
  if (M.fate[i] === 1 || M.fate[i] === 3) y1 = (y0 + y1) / 2;
  return [X(M.t0[i]), y0, X(M.t1[i]), y1];
}

function arrowShown(i) {
  const M = V.m;
  return !V.kindOff[M.kind[i]] && laneY(M.from[i]) >= 0 && laneY(M.to[i]) >= 0;
}

function drawArrows(c) {
  const M = V.m;
  const lo = lowerBound(M.t0, V.t0 - V.maxSpan), hi = upperBound(M.t0, V.t1);
  let n = 0;
  const vis = V.visMsgs;
  for (let i = lo; i < hi; i++) {
    if (M.t1[i] < V.t0 || !arrowShown(i)) continue;
    vis[n++] = i;
  }
  // Too many to read (and to stroke quickly): draw an even sample, say so, zoom shows all.
  V.inView = n;
  V.stride = Math.max(1, Math.ceil(n / ARROW_CAP));
  if (V.stride > 1) {
    let k = 0;
    for (let j = 0; j < n; j += V.stride) vis[k++] = vis[j];
    n = k;
  }
  V.visCount = n;
  const heads = n < 2500, marks = V.stride === 1, labels = n < 150;
  // group by style so each group is one path
  const groups = new Map();
  for (let j = 0; j < n; j++) {
    const i = vis[j];
    const key = M.kind[i] * 8 + (M.flags[i] & 3) * 2 + (M.fate[i] === 0 ? 0 : 1);
    let g = groups.get(key);
    if (!g) { g = []; groups.set(key, g); }
    g.push(i);
  }
  c.globalAlpha = marks ? 0.85 : 1;
  for (const [key, g] of groups) {
    const flags = (key >> 1) & 3, failed = key & 1;
    const long = flags & 2, dup = flags & 1;
    c.strokeStyle = long ? "#ef6c00" : failed ? "#9e9e9e" : kindColor(key >> 3);
    c.lineWidth = long ? 1.8 : 1;
    c.setLineDash(!marks ? [] : dup ? [5, 3] : failed ? [2, 2] : []);
    c.beginPath();
    for (const i of g) {
      const s = arrowSeg(i);
      c.moveTo(s[0], s[1]); c.lineTo(s[2], s[3]);
    }
    c.stroke();
    c.setLineDash([]);
    if (heads && !failed) {
      c.fillStyle = c.strokeStyle;
      c.beginPath();
      for (const i of g) arrowHead(c, arrowSeg(i));
      c.fill();
    }
  }
  c.globalAlpha = 1;
  if (marks) {
    for (let j = 0; j < n; j++) {
      const i = vis[j];
      if (M.fate[i] === 1 || M.fate[i] === 2) {
        const s = arrowSeg(i);
        cross(c, s[2], s[3], 4, "#d32f2f", 2);
      } else if (M.fate[i] === 3) {
        const s = arrowSeg(i);
        c.strokeStyle = "#757575"; c.lineWidth = 1.2;
        c.beginPath(); c.arc(s[2], s[3], 3.5, 0, 6.283); c.stroke(); c.lineWidth = 1;
      } else if ((M.flags[i] & 1) && labels) {
        const s = arrowSeg(i);
        c.fillStyle = "#ad1457"; c.font = "bold 9px system-ui"; c.textBaseline = "bottom";
        c.fillText("dup", (s[0] + s[2]) / 2 + 2, (s[1] + s[3]) / 2 - 1);
      } else if ((M.flags[i] & 2) && labels) {
        const s = arrowSeg(i);
        c.fillStyle = "#ef6c00"; c.font = "bold 9px system-ui"; c.textBaseline = "bottom";
        c.fillText("slow " + ((M.t1[i] - M.t0[i]) / 1000).toFixed(0) + "ms", (s[0] + s[2]) / 2 + 2, (s[1] + s[3]) / 2 - 1);
      }
    }
  }
}

function arrowHead(c, s) {
  const dx = s[2] - s[0], dy = s[3] - s[1], len = Math.hypot(dx, dy);
  if (len < 10) return;
  const ux = dx / len, uy = dy / len, L = 7, Wd = 3;
  c.moveTo(s[2], s[3]);
  c.lineTo(s[2] - ux * L - uy * Wd, s[3] - uy * L + ux * Wd);
  c.lineTo(s[2] - ux * L + uy * Wd, s[3] - uy * L - ux * Wd);
  c.closePath();
}

// Walks the sorted times `t` in view, at most one item per pixel column.
function eachInView(t, fn) {
  const lo = lowerBound(t, T(-4)), hi = upperBound(t, T(V.W + 4));
  const dense = hi - lo > 2 * V.W;
  let i = lo;
  while (i < hi) {
    const x = X(t[i]);
    fn(i, x);
    if (dense) i = Math.max(i + 1, lowerBound(t, T(Math.floor(x) + 1), i, hi));
    else i++;
  }
}

function drawLaneItems(c) {
  for (const node of V.visible) {
    const y = laneY(node), L = V.lane[node];
    // client operations: bars above the lane
    c.font = "10px system-ui"; c.textBaseline = "bottom";
    for (const o of L.ops) {
      if (o[1] < V.t0 || o[0] > V.t1) continue;
      const x0 = X(o[0]), x1 = X(o[1]), pending = o[3] < 0;
      c.fillStyle = pending ? "rgba(239,108,0,0.55)" : "rgba(21,101,192,0.55)";
      c.fillRect(x0, y - 19, Math.max(2, x1 - x0), 6);
      if (x1 - x0 > 40) {
        c.save(); c.beginPath(); c.rect(x0, y - 32, x1 - x0, 14); c.clip();
        c.fillStyle = "#0d47a1"; c.fillText(o[4], x0 + 2, y - 20); c.restore();
      }
    }
    // steps and drops: ticks on the lane
    const E = L.ev;
    eachInView(E.t, function (i, x) {
      const k = E.kind[i];
      c.fillStyle = EV_COLORS[k];
      if (k === 4) cross(c, x, y, 3, "#c62828", 1.5);
      else if (k === 5) { c.fillRect(x - 1.5, y - 9, 3, 18); }
      else c.fillRect(x - 0.5, y - 5, 1.5, 10);
    });
    // commits (up) and applies (down)
    eachInView(L.marks.t, function (i, x) {
      const commit = L.marks.kind[i] === 0;
      c.fillStyle = commit ? "#1b5e20" : "#00897b";
      c.beginPath();
      if (commit) { c.moveTo(x, y - 12); c.lineTo(x - 3, y - 7); c.lineTo(x + 3, y - 7); }
      else { c.moveTo(x, y + 12); c.lineTo(x - 3, y + 7); c.lineTo(x + 3, y + 7); }
      c.fill();
    });
    // other observations: dots under the lane
    c.fillStyle = "#8d6e63";
    eachInView(L.dots.t, function (i, x) {
      c.beginPath(); c.arc(x, y + 15, 2, 0, 6.283); c.fill();
    });
  }
}

function niceStep(span, px) {
  const raw = span / Math.max(1, px / 110);
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}

function drawRuler(c, W) {
  c.fillStyle = "#f4f5f7"; c.fillRect(0, 0, W, RULER_H);
  c.strokeStyle = "#c9ced4"; c.beginPath(); c.moveTo(0, RULER_H + 0.5); c.lineTo(W, RULER_H + 0.5); c.stroke();
  const step = Math.max(1, niceStep(V.t1 - V.t0, W - PAD_L - PAD_R));
  const dec = Math.min(6, Math.max(0, 6 - Math.floor(Math.log10(step) + 1e-9)));
  c.fillStyle = "#444"; c.font = "10px system-ui"; c.textBaseline = "top";
  c.strokeStyle = "#9aa3ad";
  for (let t = Math.ceil(V.t0 / step) * step; t <= V.t1; t += step) {
    const x = Math.round(X(t)) + 0.5;
    c.beginPath(); c.moveTo(x, RULER_H - 7); c.lineTo(x, RULER_H); c.stroke();
    c.fillText(fmtSecs(t, dec), x + 2, 3);
  }
  // notes and network-wide faults: flags on the ruler
  const G = V.global;
  eachInView(G.t, function (i, x) {
    c.fillStyle = G.kind[i] === 6 ? "#5c6bc0" : "#ef6c00";
    c.beginPath(); c.moveTo(x, RULER_H); c.lineTo(x - 4, RULER_H - 8); c.lineTo(x + 4, RULER_H - 8); c.fill();
  });
}

function drawViolation(c, H) {
  const v = V.violation;
  if (!v || v.time < V.t0 || v.time > V.t1) return;
  const x = X(v.time);
  c.strokeStyle = "#d32f2f"; c.lineWidth = 1.5; c.setLineDash([6, 4]);
  c.beginPath(); c.moveTo(x, RULER_H); c.lineTo(x, H); c.stroke(); c.setLineDash([]);
  for (const n of v.nodes) {
    const y = laneY(n);
    if (y < 0) continue;
    c.beginPath(); c.arc(x, y, 9, 0, 6.283); c.stroke();
  }
  c.lineWidth = 1;
  c.fillStyle = "#d32f2f"; c.font = "bold 11px system-ui"; c.textBaseline = "top";
  c.fillText("✖ " + v.property, x + 4, RULER_H + 2);
}

// The explanation's chain: a magenta ring (a colour nothing else uses) on each of its
// events, a dashed line through them in order, the current step filled.
function chainXY(e) {
  const y = e.node !== null && e.node >= 0 && laneY(e.node) >= 0 ? laneY(e.node) : RULER_H - 6;
  return [X(e.t), y];
}
function drawChain(c) {
  const ch = V.chain;
  if (!ch.length) return;
  c.strokeStyle = "rgba(224,0,255,0.5)"; c.lineWidth = 1.5; c.setLineDash([3, 3]);
  c.beginPath();
  ch.forEach(function (e, k) { const p = chainXY(e); if (k) c.lineTo(p[0], p[1]); else c.moveTo(p[0], p[1]); });
  c.stroke(); c.setLineDash([]);
  ch.forEach(function (e, k) {
    if (e.t < V.t0 || e.t > V.t1) return;
    const p = chainXY(e);
    c.strokeStyle = "#e000ff"; c.lineWidth = 2.5;
    c.beginPath(); c.arc(p[0], p[1], 7, 0, 6.283); c.stroke();
    if (k === V.chainAt) { c.fillStyle = "rgba(224,0,255,0.3)"; c.fill(); }
    c.fillStyle = "#b000c8"; c.font = "bold 10px system-ui"; c.textBaseline = "bottom";
    c.fillText(String(k + 1), p[0] + 6, p[1] - 6);
  });
  c.lineWidth = 1;
}

function drawSelection(c) {
  const s = V.sel;
  if (!s) return;
  c.strokeStyle = "#ffb300"; c.lineWidth = 3;
  if (s.type === "msg") {
    const g = arrowSeg(s.i);
    c.beginPath(); c.moveTo(g[0], g[1]); c.lineTo(g[2], g[3]); c.stroke();
  } else if (s.t !== undefined) {
    const x = X(s.t), y = s.node >= 0 && laneY(s.node) >= 0 ? laneY(s.node) : RULER_H - 6;
    c.beginPath(); c.arc(x, y, 8, 0, 6.283); c.stroke();
    c.strokeStyle = "rgba(255,179,0,0.5)"; c.lineWidth = 1;
    c.beginPath(); c.moveTo(x, RULER_H); c.lineTo(x, V.H); c.stroke();
  }
  c.lineWidth = 1;
}

function segDist(px, py, s) {
  const dx = s[2] - s[0], dy = s[3] - s[1], l2 = dx * dx + dy * dy;
  let u = l2 ? ((px - s[0]) * dx + (py - s[1]) * dy) / l2 : 0;
  u = Math.max(0, Math.min(1, u));
  return Math.hypot(px - s[0] - u * dx, py - s[1] - u * dy);
}

// Nearest index of sorted times `t` to x, within `tol` pixels; -1 if none.
function nearest(t, x, tol) {
  const i = lowerBound(t, T(x));
  let best = -1, bd = tol;
  for (const j of [i - 1, i, i + 1]) {
    if (j < 0 || j >= t.length) continue;
    const d = Math.abs(X(t[j]) - x);
    if (d <= bd) { bd = d; best = j; }
  }
  return best;
}

// What is under (x, y): an object for showDetails, or null.
function hitTest(x, y) {
  let best = null, bd = 1e9;
  function offer(d, obj) { if (obj && d < bd) { bd = d; best = obj; } }
  if (y <= RULER_H) {
    const i = nearest(V.global.t, x, 6);
    if (i >= 0) offer(0, { type: "ev", rec: V.global.rec[i], t: V.global.t[i], node: -1 });
    return best;
  }
  for (const node of V.visible) {
    const ly = laneY(node), dy = y - ly, L = V.lane[node];
    if (Math.abs(dy) > LANE_H / 2) continue;
    let i = nearest(L.ev.t, x, 6);
    if (i >= 0 && Math.abs(dy) <= 9) offer(Math.abs(X(L.ev.t[i]) - x) + Math.abs(dy) * 0.3, { type: "ev", rec: L.ev.rec[i], t: L.ev.t[i], node: node });
    i = nearest(L.marks.t, x, 5);
    if (i >= 0 && Math.abs(dy) <= 14) offer(Math.abs(X(L.marks.t[i]) - x) + Math.abs(Math.abs(dy) - 9), { type: "mark", node: node, j: i, t: L.marks.t[i] });
    i = nearest(L.dots.t, x, 5);
    if (i >= 0 && dy >= 10 && dy <= 21) offer(Math.abs(X(L.dots.t[i]) - x) + Math.abs(dy - 15), { type: "dot", node: node, j: i, t: L.dots.t[i] });
    if (dy >= -23 && dy <= -11) {
      L.ops.forEach(function (o, j) {
        if (x >= X(o[0]) - 2 && x <= X(o[1]) + 2) offer(3 + Math.abs(dy + 16), { type: "op", node: node, j: j, t: o[0] });
      });
    }
    if (!best) {
      for (const d of L.down) {
        if (x >= X(d[0]) && x <= X(d[1]) && Math.abs(dy) < 10) offer(8, { type: "down", node: node, d: d, t: d[0] });
      }
      for (const s of L.roles) {
        if (x >= X(s[0]) && x <= X(s[1]) && Math.abs(dy) < 6) offer(9, { type: "role", node: node, s: s, t: s[0] });
      }
    }
  }
  for (let j = 0; j < V.visCount; j++) {
    const i = V.visMsgs[j], d = segDist(x, y, arrowSeg(i));
    if (d <= 5) offer(d + 1, { type: "msg", i: i });
  }
  if (!best) {
    for (const p of V.periods) {
      if (x >= X(p[0]) && x <= X(p[1])) offer(50, { type: "period", p: p, t: p[0], node: -1 });
    }
  }
  return best;
}
