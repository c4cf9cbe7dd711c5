/* optbench workspace dashboard: renders window.OPTBENCH_DATA (data.js) into the page. No dependencies.
 * Workspace text is inserted with textContent, except message bodies: body_html is markdown that the builder
 * rendered with raw HTML disabled and sanitised with nh3's allowlist (messages come from other participants).
 * When done, <body data-dashboard="ready">; each chart container gets data-rendered="true" and
 * data-points="N" (the number of points drawn), which tests read from the dumped DOM. */
(function () {
  "use strict";
  var SVGNS = "http://www.w3.org/2000/svg";
  var COLORS = ["#2563eb", "#059669", "#d97706", "#7c3aed", "#db2777", "#0891b2", "#65a30d", "#9333ea", "#ea580c", "#475569"];

  function h(tag, attrs, text) {
    var e = document.createElement(tag);
    if (attrs) for (var k in attrs) if (attrs[k] !== undefined && attrs[k] !== null) e.setAttribute(k, attrs[k]);
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function s(tag, attrs, text) {
    var e = document.createElementNS(SVGNS, tag);
    if (attrs) for (var k in attrs) if (attrs[k] !== undefined && attrs[k] !== null) e.setAttribute(k, attrs[k]);
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function fmtInt(n) { return n === null || n === undefined ? "" : Number(n).toLocaleString("en-US"); }
  function plural(n, w) { return n + " " + w + (n === 1 ? "" : "s"); }
  function pad2(n) { return (n < 10 ? "0" : "") + n; }
  function fmtTime(ms) {
    var d = new Date(ms);
    return d.getUTCFullYear() + "-" + pad2(d.getUTCMonth() + 1) + "-" + pad2(d.getUTCDate()) + " " + pad2(d.getUTCHours()) + ":" + pad2(d.getUTCMinutes());
  }
  function fmtTick(ms, lo, hi) {  /* short time tick labels: HH:MM within a day, MM-DD HH:MM beyond */
    var d = new Date(ms), hm = pad2(d.getUTCHours()) + ":" + pad2(d.getUTCMinutes());
    if (hi - lo <= 86400e3 * 1.2) return hm;
    return pad2(d.getUTCMonth() + 1) + "-" + pad2(d.getUTCDate()) + (hi - lo > 86400e3 * 4 ? "" : " " + hm);
  }
  function cleanCell(t) {
    return String(t).replace(/\[([^\]]*)\]\([^)]*\)/g, "$1").replace(/\*\*/g, "").replace(/`/g, "");
  }

  function niceTicks(lo, hi, count) {
    if (!(hi > lo)) { hi = lo + 1; }
    var span = hi - lo, step = Math.pow(10, Math.floor(Math.log10(span / count)));
    var err = span / count / step;
    if (err >= 7.5) step *= 10; else if (err >= 3.5) step *= 5; else if (err >= 1.5) step *= 2;
    var ticks = [], t = Math.ceil(lo / step) * step;
    for (; t <= hi + step * 1e-9; t += step) ticks.push(+t.toPrecision(12));
    return ticks;
  }

  /* lineChart(container, {series: [{name, points: [[x, y]], color, step, dash, dots}], marks: [{x, y, label, color}],
   *   xTime, xLabel, yLabel, yClip: [lo, hi], hlines: [{y, label}]}) */
  function lineChart(container, o) {
    var W = 640, H = 300, m = {l: 62, r: 30, t: 16, b: 42};
    var pw = W - m.l - m.r, ph = H - m.t - m.b;
    var xs = [], ys = [], npts = 0;
    o.series.forEach(function (se) { se.points.forEach(function (p) { xs.push(p[0]); ys.push(p[1]); npts++; }); });
    (o.hlines || []).forEach(function (l) { ys.push(l.y); });
    container.textContent = "";
    if (!npts) {
      container.appendChild(h("p", {"class": "empty"}, o.empty || "no data yet"));
      container.setAttribute("data-rendered", "true");
      container.setAttribute("data-points", "0");
      return;
    }
    var x0 = Math.min.apply(null, xs), x1 = Math.max.apply(null, xs);
    var y0 = Math.min.apply(null, ys), y1 = Math.max.apply(null, ys);
    if (o.yClip) { y0 = Math.max(y0, o.yClip[0]); y1 = Math.min(y1, o.yClip[1]); }
    if (x1 === x0) { var dx = o.xTime ? 3600e3 : 1; x0 -= dx; x1 += dx; }
    if (y1 === y0) { var dy = Math.abs(y0) * 0.05 || 1; y0 -= dy; y1 += dy; }
    var ypad = (y1 - y0) * 0.08; y0 -= ypad; y1 += ypad;
    var xpad = (x1 - x0) * 0.03; x0 -= xpad; x1 += xpad;
    function X(v) { return m.l + (v - x0) / (x1 - x0) * pw; }
    function Y(v) { return m.t + (1 - (v - y0) / (y1 - y0)) * ph; }

    var svg = s("svg", {viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": o.title || "chart"});
    var clipId = "clip-" + container.id;
    var defs = s("defs"); var cp = s("clipPath", {id: clipId});
    cp.appendChild(s("rect", {x: m.l, y: m.t, width: pw, height: ph})); defs.appendChild(cp); svg.appendChild(defs);

    var axis = s("g", {"class": "axis"});
    niceTicks(y0, y1, 5).forEach(function (t) {
      axis.appendChild(s("line", {x1: m.l, x2: m.l + pw, y1: Y(t), y2: Y(t), "class": "grid-line"}));
      axis.appendChild(s("text", {x: m.l - 6, y: Y(t) + 4, "text-anchor": "end"}, o.yFmt ? o.yFmt(t) : t));
    });
    var xt = o.xTime ? niceTicks(x0, x1, 4) : niceTicks(x0, x1, 6);
    if (o.xTime) {  // time ticks on whole minutes/hours/days
      var spanH = (x1 - x0) / 3600e3, unit = spanH > 72 ? 86400e3 : spanH > 6 ? 3600e3 * 6 : spanH > 1 ? 3600e3 : 600e3;
      xt = []; for (var t = Math.ceil(x0 / unit) * unit; t <= x1; t += unit) xt.push(t);
      while (xt.length > 6) xt = xt.filter(function (_, i) { return i % 2 === 0; });
    }
    xt.forEach(function (t) {
      axis.appendChild(s("line", {x1: X(t), x2: X(t), y1: m.t + ph, y2: m.t + ph + 4}));
      var anchor = X(t) > W - 45 ? "end" : "middle";
      axis.appendChild(s("text", {x: X(t), y: m.t + ph + 16, "text-anchor": anchor}, o.xTime ? fmtTick(t, x0, x1) : fmtInt(t)));
    });
    axis.appendChild(s("line", {x1: m.l, x2: m.l + pw, y1: m.t + ph, y2: m.t + ph}));
    axis.appendChild(s("line", {x1: m.l, x2: m.l, y1: m.t, y2: m.t + ph}));
    if (o.xLabel) axis.appendChild(s("text", {x: m.l + pw / 2, y: H - 6, "text-anchor": "middle"}, o.xLabel));
    if (o.yLabel) axis.appendChild(s("text", {x: 14, y: m.t + ph / 2, transform: "rotate(-90 14 " + (m.t + ph / 2) + ")", "text-anchor": "middle"}, o.yLabel));
    svg.appendChild(axis);

    var plot = s("g", {"clip-path": "url(#" + clipId + ")"});
    (o.hlines || []).forEach(function (l) {
      plot.appendChild(s("line", {x1: m.l, x2: m.l + pw, y1: Y(l.y), y2: Y(l.y), stroke: "#dc2626", "stroke-dasharray": "5 4", "stroke-width": 1}));
      plot.appendChild(s("text", {x: m.l + pw - 4, y: Y(l.y) - 4, "text-anchor": "end", fill: "#dc2626"}, l.label));
    });
    o.series.forEach(function (se, i) {
      var c = se.color || COLORS[i % COLORS.length], d = "";
      se.points.forEach(function (p, j) {
        if (j === 0) d += "M" + X(p[0]) + " " + Y(p[1]);
        else if (se.step) d += "H" + X(p[0]) + "V" + Y(p[1]);
        else d += "L" + X(p[0]) + " " + Y(p[1]);
      });
      if (se.line !== false && se.points.length > 1)
        plot.appendChild(s("path", {d: d, fill: "none", stroke: c, "stroke-width": se.width || 1.8, "stroke-dasharray": se.dash, "class": "series", "data-name": se.name}));
      if (se.dots || se.points.length === 1)
        se.points.forEach(function (p) { plot.appendChild(s("circle", {cx: X(p[0]), cy: Y(p[1]), r: 3.5, fill: c, "class": "dot"})); });
    });
    svg.appendChild(plot);
    (o.marks || []).forEach(function (mk) {
      var g = s("g", {"class": "mark" + (mk.best ? " new-best" : "")});
      g.appendChild(s("circle", {cx: X(mk.x), cy: Y(mk.y), r: mk.best ? 5.5 : 4, fill: mk.color || "#98a2b3", stroke: "#fff", "stroke-width": 1.5}));
      var right = X(mk.x) > W - 110;
      if (mk.label) g.appendChild(s("text", {x: X(mk.x) + (right ? -7 : 7), y: Y(mk.y) - 8, "text-anchor": right ? "end" : "start", "class": mk.best ? "label-best" : ""}, mk.label));
      g.appendChild(s("title", null, mk.title || mk.label || ""));
      svg.appendChild(g);
    });
    container.appendChild(svg);
    if (o.legend !== false) {
      var lg = h("div", {"class": "legend"});
      o.series.forEach(function (se, i) {
        if (se.legend === false) return;
        var item = h("span", {style: "--c:" + (se.color || COLORS[i % COLORS.length])}, se.name);
        lg.appendChild(item);
      });
      container.appendChild(lg);
    }
    container.setAttribute("data-rendered", "true");
    container.setAttribute("data-points", String(npts + (o.marks || []).length));
  }

  function renderLeaderboard(D) {
    var box = document.getElementById("leaderboard"), lb = D.leaderboard || {};
    var tables = lb.tables || [];
    if (!tables.length) {
      if (lb.markdown && lb.markdown.trim()) box.appendChild(h("pre", null, lb.markdown));
      else box.appendChild(h("p", {"class": "empty"}, "No results yet."));
      return;
    }
    tables.forEach(function (t, ti) {
      if (t.title && tables.length > 1) box.appendChild(h("h3", null, t.title));
      var table = h("table", {"class": "leaderboard", "data-table": String(ti)});
      var tr = h("tr");
      var align = t.align || [];
      t.header.forEach(function (c, ci) { tr.appendChild(h("th", align[ci] === "right" ? {"class": "num"} : null, cleanCell(c))); });
      var thead = h("thead"); thead.appendChild(tr); table.appendChild(thead);
      var tb = h("tbody");
      t.rows.forEach(function (r) {
        var row = h("tr", {"class": "lb-row"});
        r.forEach(function (c, ci) {
          var txt = cleanCell(c);
          row.appendChild(h("td", align[ci] === "right" ? {"class": "num"} : null, txt));
        });
        tb.appendChild(row);
      });
      table.appendChild(tb);
      box.appendChild(table);
    });
    box.appendChild(h("p", {"class": "muted"}, "Source: " + (lb.source || "LEADERBOARD.md")));
  }

  function timeAxisLabel(pts) {
    if (!pts.length) return "time (UTC)";
    var a = fmtTime(pts[0][0]).slice(0, 10), b = fmtTime(pts[pts.length - 1][0]).slice(0, 10);
    return "time (UTC), " + (a === b ? a : a + " to " + b);
  }
  function renderBest(D) {
    var pts = D.best_over_time || [], marks = [], line = [];
    pts.forEach(function (p) {
      var t = Date.parse(p.time);
      if (isNaN(t)) return;
      line.push([t, p.best]);
      marks.push({x: t, y: p.steps, best: p.new_best, color: p.new_best ? "#dc2626" : "#98a2b3",
        label: p.new_best ? "NEW BEST " + fmtInt(p.steps) : null,
        title: p.name + ": " + fmtInt(p.steps) + " steps" + (p.new_best ? " (NEW BEST)" : "")});
    });
    var end = Date.parse(D.generated_at);
    if (line.length && !isNaN(end) && end > line[line.length - 1][0]) line.push([end, line[line.length - 1][1]]);
    lineChart(document.getElementById("best-chart"), {
      title: "best steps over time", xTime: true, xLabel: timeAxisLabel(line), yLabel: "steps to target",
      series: [{name: "best so far", points: line, step: true, color: "#2563eb"}],
      marks: marks, yFmt: fmtInt, empty: "No marked results on the board yet."
    });
  }

  function renderLoss(D) {
    var curves = D.curves || [], ys = [], target = null;
    curves.forEach(function (c) { c.points.forEach(function (p) { ys.push(p[1]); }); if (c.target) target = c.target; });
    var lo = ys.length ? Math.min.apply(null, ys) : 0;
    var hi = target ? Math.max(target + 0.6, lo + 0.3) : (ys.length ? Math.max.apply(null, ys) : 1);
    lineChart(document.getElementById("loss-chart"), {
      title: "validation loss", xLabel: "step", yLabel: "val loss",
      series: curves.map(function (c) { return {name: c.name, points: c.points}; }),
      hlines: target ? [{y: target, label: "target " + target}] : [],
      yClip: [lo, hi], yFmt: function (v) { return v.toFixed(2); },
      empty: "No loss curves yet (results.json files without per-seed curves)."
    });
  }

  function renderClaims(D) {
    var box = document.getElementById("claims"), cl = D.claims || [];
    if (!cl.length) { box.appendChild(h("p", {"class": "empty"}, "No active claims.")); return; }
    var table = h("table", {"class": "claims"}), tr = h("tr");
    ["direction", "owner", "latest progress", "expires (UTC)"].forEach(function (c) { tr.appendChild(h("th", null, c)); });
    table.appendChild(tr);
    cl.forEach(function (c) {
      var r = h("tr", {"class": "claim-row", "data-claim": c.id});
      r.appendChild(h("td", null, c.direction));
      r.appendChild(h("td", null, c.owner));
      r.appendChild(h("td", null, c.progress || "—"));
      r.appendChild(h("td", null, fmtTime(Date.parse(c.expires))));
      table.appendChild(r);
    });
    box.appendChild(table);
  }

  function renderArtifacts(D) {
    var box = document.getElementById("artifacts"), arts = D.artifacts || [];
    if (!arts.length) { box.appendChild(h("p", {"class": "empty"}, "No artifacts yet.")); return; }
    var table = h("table"), tr = h("tr");
    ["folder", "optimizer", "steps", "parts", "files"].forEach(function (c) { tr.appendChild(h("th", null, c)); });
    table.appendChild(tr);
    var rows = [];
    arts.forEach(function (a) {
      var r = h("tr", {"class": "artifact-row"});
      r.appendChild(h("td", null, a.name));
      r.appendChild(h("td", null, a.optimizer || ""));
      r.appendChild(h("td", {"class": "num"}, a.steps === null || a.steps === undefined ? "—" : fmtInt(a.steps)));
      r.appendChild(h("td", {"class": "parts"}, (a.parts || []).join(", ")));
      var td = h("td", null, (a.files || []).join(", "));
      if (a.warning) td.appendChild(h("div", {"class": "warn"}, "⚠ " + a.warning));
      r.appendChild(td);
      table.appendChild(r);
      rows.push([r, a.parts || []]);
    });
    // "which results use the hyperball": one filter on the recipe's parts
    var filter = h("input", {"id": "parts-filter", "placeholder": "filter by part (e.g. hyperball)"});
    filter.addEventListener("input", function () {
      var q = filter.value.trim();
      rows.forEach(function (x) {
        var hit = !q || x[1].some(function (p) { return p === q || p === "aux." + q; });
        x[0].style.display = hit ? "" : "none";
      });
    });
    box.appendChild(filter);
    box.appendChild(table);
  }

  function renderMessages(D) {
    var box = document.getElementById("messages"), ms = D.messages || [];
    if (!ms.length) { box.appendChild(h("p", {"class": "empty"}, "No messages yet.")); return; }
    box.appendChild(h("p", {"class": "muted"}, "Newest first; " + ms.length + " of " + D.message_count + " messages."));
    ms.forEach(function (m) {
      var d = h("div", {"class": "msg", "data-name": m.name});
      var head = h("div", {"class": "head"});
      head.appendChild(h("b", null, m.agent || "(malformed)"));
      head.appendChild(document.createTextNode([""].concat(m.timestamp ? [m.timestamp] : [], [m.name]).join(" · ")));
      if (m.type && m.type !== "agent") head.appendChild(h("span", {"class": "badge " + m.type}, m.type));
      if (m.steps !== null && m.steps !== undefined) head.appendChild(h("span", {"class": "badge result"}, fmtInt(m.steps) + " steps"));
      if (m.new_best) head.appendChild(h("span", {"class": "badge best"}, "NEW BEST"));
      if (m.refs && m.refs.length) head.appendChild(document.createTextNode(" · re: " + m.refs.join(", ")));
      d.appendChild(head);
      (m.warnings || []).forEach(function (w) { d.appendChild(h("div", {"class": "warn"}, "⚠ " + w)); });
      var body = h("div", {"class": "body md"});
      body.innerHTML = m.body_html;  /* sanitised by the builder (markdown-it-py, html off, then nh3) */
      d.appendChild(body);
      box.appendChild(d);
    });
  }

  function fmtParams(p) {
    return Object.keys(p || {}).map(function (k) {
      var v = p[k];
      return k + "=" + (typeof v === "number" ? Number(v.toPrecision(4)) : v);
    }).join(", ");
  }
  function renderSweeps(D) {
    var box = document.getElementById("sweeps"), sw = D.sweeps || [];
    if (!sw.length) { box.appendChild(h("p", {"class": "empty"}, "No sweeps reported to this workspace.")); return; }
    var table = h("table", {"class": "sweeps"}), tr = h("tr");
    ["sweep", "state", "track / optimizer", "trials", "best so far", "device-h", "updated (UTC)", "agents"].forEach(function (c) { tr.appendChild(h("th", null, c)); });
    table.appendChild(tr);
    sw.forEach(function (x) {
      var r = h("tr", {"class": "sweep-row", "data-state": x.state});
      r.appendChild(h("td", null, x.sweep));
      r.appendChild(h("td", null, x.state));
      r.appendChild(h("td", null, (x.track || "?") + " / " + (x.optimizer || "?")));
      r.appendChild(h("td", {"class": "num"}, (x.finished_trials === null ? "?" : x.finished_trials) + (x.max_trials ? " / " + x.max_trials : "")));
      r.appendChild(h("td", null, x.best_value === null || x.best_value === undefined ? "—" :
        x.objective + " " + Number(x.best_value.toPrecision(5)) + " (trial " + x.best_trial + ": " + fmtParams(x.best_params) + ")"));
      r.appendChild(h("td", {"class": "num"}, x.device_hours === null ? "?" : Number(x.device_hours).toFixed(3)));
      r.appendChild(h("td", null, fmtTime(Date.parse(x.updated))));
      r.appendChild(h("td", null, (x.agents || []).join(", ")));
      table.appendChild(r);
    });
    box.appendChild(table);
  }

  function main() {
    var D = window.OPTBENCH_DATA;
    if (!D) throw new Error("data.js did not load");
    document.getElementById("meta").textContent = D.workspace + " · built " + D.generated_at + " · " +
      plural(D.message_count, "message") + " · " + plural((D.claims || []).length, "active claim") + " · " + plural((D.artifacts || []).length, "artifact");
    renderLeaderboard(D);
    renderBest(D);
    renderLoss(D);
    renderClaims(D);
    renderSweeps(D);
    renderArtifacts(D);
    renderMessages(D);
    if ((D.warnings || []).length) {
      document.getElementById("warnings-section").hidden = false;
      D.warnings.forEach(function (w) { document.getElementById("warnings").appendChild(h("li", {"class": "warn"}, w)); });
    }
    if (D.refresh_s > 0) setTimeout(function () { window.location.reload(); }, D.refresh_s * 1000);
    document.body.setAttribute("data-dashboard", "ready");
  }

  try { main(); } catch (e) {
    document.body.setAttribute("data-dashboard", "error");
    document.body.insertBefore(h("p", {"class": "warn", id: "dashboard-error"}, "dashboard error: " + e.message), document.body.firstChild);
  }
})();
