// The linearizability panel: the offending key's operations as intervals per client, with the
// reason no order exists. Tolerant of the report's shape: any object with an `ops` array whose
// items have a client and call/return times.

function pick(o, names) {
  for (const n of names) if (o && o[n] !== undefined && o[n] !== null) return o[n];
  return undefined;
}

function linOps(report) {
  const ops = [];
  (report.ops || []).forEach(function (o, i) {
    if (!o || typeof o !== "object") return;
    const call = Number(pick(o, ["call", "start", "invoke", "t0", "begin"]));
    if (!isFinite(call)) return;
    const r = pick(o, ["ret", "return", "end", "t1", "finish"]);
    ops.push({
      pos: i,
      index: pick(o, ["index", "id"]),
      client: String(pick(o, ["client", "process", "node", "clerk"]) ?? "?"),
      call: call,
      ret: r === undefined ? null : Number(r),
      text: String(pick(o, ["description", "op", "input", "label"]) ?? ""),
    });
  });
  return ops;
}

function linReason(report, ops) {
  const key = report.key !== undefined && report.key !== null ? "key " + JSON.stringify(report.key) : "this history";
  const prefix = Array.isArray(report.longest_prefix) ? report.longest_prefix : [];
  const stuck = Array.isArray(report.stuck) ? report.stuck : [];
  const name = function (p) { const o = ops.find(function (x) { return x.pos === p; }); return o ? "#" + p + " " + o.text + " (client " + o.client + ")" : "#" + p; };
  let s = "No order of the " + ops.length + " operations on " + key + " is consistent with their real-time order and the sequential model.";
  if (prefix.length || report.state_after_prefix !== undefined) {
    s += "\nLongest linearizable prefix: " + (prefix.length ? prefix.map(function (p) { return "#" + p; }).join(" → ") : "(empty)");
    if (report.state_after_prefix !== undefined) s += ", leaving the state " + report.state_after_prefix + ".";
  }
  if (stuck.length) {
    s += "\nEvery operation that could come next fails:";
    for (const st of stuck) {
      const p = typeof st === "number" ? st : st.op;
      const why = typeof st === "object" && st.rejected === false ? "the model accepts it, but nothing can follow" : "the model rejects it";
      s += "\n  " + name(p) + ": " + why;
    }
  }
  if (!prefix.length && !stuck.length && report.reason) s += "\n" + report.reason;
  return s;
}

function renderLin(report) {
  if (!report || typeof report !== "object") return;
  const ops = linOps(report);
  if (!ops.length) return;
  const sec = document.getElementById("lin");
  sec.hidden = false;
  document.getElementById("lin-reason").textContent = linReason(report, ops);
  const prefix = Array.isArray(report.longest_prefix) ? report.longest_prefix : [];
  const stuck = new Set((report.stuck || []).map(function (s) { return typeof s === "number" ? s : s.op; }));
  const clients = Array.from(new Set(ops.map(function (o) { return o.client; }))).sort();
  let lo = Infinity, hi = -Infinity;
  for (const o of ops) { lo = Math.min(lo, o.call); hi = Math.max(hi, o.ret === null ? o.call : o.ret); }
  const span = Math.max(1, hi - lo);
  hi += span * 0.08;
  const cv = document.getElementById("lin-canvas");
  const dpr = window.devicePixelRatio || 1, W = Math.max(300, sec.clientWidth - 28), rowH = 30, left = 90;
  const H = 24 + rowH * clients.length;
  cv.width = W * dpr; cv.height = H * dpr; cv.style.height = H + "px"; cv.style.width = W + "px";
  const c = cv.getContext("2d");
  c.setTransform(dpr, 0, 0, dpr, 0, 0);
  const x = function (t) { return left + (t - lo) / (hi - lo) * (W - left - 10); };
  c.font = "11px system-ui"; c.textBaseline = "middle";
  clients.forEach(function (cl, r) {
    const y = 20 + r * rowH + rowH / 2;
    c.fillStyle = "#333"; c.fillText("client " + cl, 4, y);
    c.strokeStyle = "#ddd"; c.beginPath(); c.moveTo(left, y + 0.5); c.lineTo(W, y + 0.5); c.stroke();
    for (const o of ops.filter(function (o) { return o.client === cl; })) {
      const x0 = x(o.call), x1 = o.ret === null ? x(hi) : x(o.ret);
      const order = prefix.indexOf(o.pos);
      c.fillStyle = stuck.has(o.pos) ? "rgba(211,47,47,0.75)" : order >= 0 ? "rgba(46,125,50,0.6)" : "rgba(120,144,156,0.55)";
      c.fillRect(x0, y - 8, Math.max(3, x1 - x0), 16);
      if (o.ret === null) { c.strokeStyle = "#555"; c.setLineDash([3, 3]); c.strokeRect(x0, y - 8, x1 - x0, 16); c.setLineDash([]); }
      c.fillStyle = "#111";
      c.save(); c.beginPath(); c.rect(x0, y - 9, Math.max(3, x1 - x0), 18); c.clip();
      c.fillText((order >= 0 ? order + 1 + ". " : "#" + o.pos + " ") + o.text, x0 + 3, y);
      c.restore();
    }
  });
  c.fillStyle = "#666"; c.textBaseline = "top";
  c.fillText("green: longest linearizable prefix (numbered in order) · red: no next operation works · dashed: pending · time " + lo + " … " + Math.round(hi), left, 2);
}
