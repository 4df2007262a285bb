/* xentcheck report: draws the page from the JSON in script#xc-data.
 * Every text from the data is set with textContent (never innerHTML), links only for
 * http(s) addresses, and the page makes no request to any host. */
(async function () {
  "use strict";
  // a data block is JSON, or (data-encoding="gzip-base64") gzip-compressed JSON in base64,
  // unpacked in the page itself: no request is made
  async function readData(id) {
    const node = document.getElementById(id);
    if (!node) return null;
    const text = node.textContent;
    if (node.getAttribute("data-encoding") !== "gzip-base64") return JSON.parse(text);
    const bin = atob(text.trim());
    const bytes = new Uint8Array(bin.length);
    for (let k = 0; k < bin.length; k++) bytes[k] = bin.charCodeAt(k);
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    return JSON.parse(await new Response(stream).text());
  }
  const D = await readData("xc-data");
  D.repro = await readData("xc-repro");
  const C = D.cols;
  const N = D.n;
  const SEV = D.severity;
  const DTYPE_ORDER = ["float64", "float32", "float16", "bfloat16"];
  const DTYPE_SHORT = { float64: "f64", float32: "f32", float16: "f16", bfloat16: "bf16" };
  const PAGE = 100;
  const MATRIX_ROWS = 150;

  // ---------- small DOM helpers (text only) ----------
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    if (attrs) for (const k in attrs) {
      const v = attrs[k];
      if (v === null || v === undefined || v === false) continue;
      if (k === "text") e.textContent = v;
      else if (k === "cls") e.className = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : v);
    }
    for (const kid of kids) if (kid !== null && kid !== undefined) e.append(kid instanceof Node ? kid : String(kid));
    return e;
  }
  const SVGNS = "http://www.w3.org/2000/svg";
  function sv(tag, attrs, text) {
    const e = document.createElementNS(SVGNS, tag);
    for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function link(href, text) {
    const ok = typeof href === "string" && /^https?:\/\//i.test(href);
    return ok ? el("a", { href: href, rel: "noopener noreferrer", target: "_blank", text: text || href }) : el("span", { text: text || "" });
  }
  const badge = (status, prefix) => el("span", { cls: "badge " + (prefix || "st-") + status, text: status });
  function fmt(x) {
    if (x === null || x === undefined) return "–";
    if (typeof x === "string") return x;
    if (x === 0) return "0";
    const a = Math.abs(x);
    if (a >= 1e5 || a < 1e-3) return x.toExponential(2).replace("e+", "e");
    return String(Number(x.toPrecision(4)));
  }
  function fmtUlp(u) {
    if (u === null || u === undefined) return "";
    if (u === 0) return "0";
    if (u < 10) return String(Number(u.toPrecision(2)));
    if (u < 1000) return String(Math.round(u));
    return u.toExponential(0).replace("e+", "e");
  }
  const fmtInt = (n) => n.toLocaleString("en-US");

  // ---------- decoded columns ----------
  const V = {}, K = {};
  for (const name of ["loss", "case", "inst", "fw", "api", "dev", "dtype", "qty", "status", "variant", "change", "run"]) {
    if (C[name]) { V[name] = C[name].v; K[name] = Int32Array.from(C[name].c); }
  }
  const ULP = C.ulp, ABS = C.abs, REL = C.rel, DET = Int32Array.from(C.det);
  // rows whose golden is 0 where the result is not: their ULP error is not defined (null)
  const ZERO = new Uint8Array(N);
  for (const i of C.z || []) ZERO[i] = 1;
  const ZERO_NOTE = "ULP error not defined: the golden is 0 where the result is not (a ULP at 0 is the smallest subnormal); the absolute error stands for it";
  const statusSev = V.status.map((s) => { const i = SEV.indexOf(s); return i < 0 ? SEV.length : i; });
  const ROWSEV = new Uint8Array(N);
  for (let i = 0; i < N; i++) ROWSEV[i] = statusSev[K.status[i]];
  const caseInfo = D.caseInfo; // per case code: {d: desc, t: [tag codes], f: file idx, l: line, e: end line, x: expect_error}
  // a framework held at several version sets (or machines) is named by its label: "jax 0.10.2"
  const fwLabel = (i) => V.variant[K.variant[i]] || V.fw[K.fw[i]];

  // ---------- state ----------
  const S = {
    status: new Set(V.status.map((_, c) => c)),
    fw: new Set(), dtype: new Set(V.dtype.map((_, c) => c)), dev: new Set(V.dev.map((_, c) => c)),
    change: V.change ? new Set(V.change.map((_, c) => c)) : null,
    loss: -1, tag: -1, text: "", cell: null, finding: -1,
    rowMode: "case", colMode: "framework", rowSort: "name", colSort: null,
    sort: "status", asc: true, page: 0, open: -1, showAll: new Set(),
  };
  const FWKEYS = [];
  { const seen = new Map(); for (let i = 0; i < N; i++) { const k = K.fw[i] * 4096 + K.variant[i]; if (!seen.has(k)) { seen.set(k, FWKEYS.length); FWKEYS.push({ k: k, label: fwLabel(i) }); } } }
  FWKEYS.sort((a, b) => a.label.localeCompare(b.label));
  for (const f of FWKEYS) S.fw.add(f.k);

  // ---------- findings ----------
  const F = D.findings || [];
  const KINDS = [...new Set(F.map((f) => f.kind))].sort((a, b) => Math.min(...F.filter((f) => f.kind === a).map((f) => f.severity)) - Math.min(...F.filter((f) => f.kind === b).map((f) => f.severity)) || a.localeCompare(b));
  const labelOf = (f) => f.label || f.framework;
  const F_FWS = [...new Set(F.map(labelOf))].sort();
  const F_STATUS = ["new", "unchanged", "fixed"];
  const FS = { kind: new Set(KINDS), fw: new Set(F_FWS), expl: new Set(["unexplained", "known"]), status: new Set(F_STATUS), text: "" };
  const explOf = (f) => (f.known ? "known" : "unexplained");
  // the finding each row belongs to (-1: none), and each finding's rows as a lookup
  const ROWFINDING = new Int32Array(N).fill(-1);
  F.forEach((f, fi) => { for (const r of f.r) if (ROWFINDING[r] < 0) ROWFINDING[r] = fi; });
  // ---------- filtering ----------
  let SEL = new Int32Array(0);
  function textMatches(q) {
    // per-value match tables: cheap (distinct values), then one lookup per row
    const m = (arr) => Uint8Array.from(arr, (s) => (String(s).toLowerCase().includes(q) ? 1 : 0));
    const caseM = Uint8Array.from(V.case, (s, c) => {
      const ci = caseInfo[c] || {};
      const tags = (ci.t || []).map((t) => D.tags[t]).join(" ");
      return (s + " " + (ci.d || "") + " " + tags).toLowerCase().includes(q) ? 1 : 0;
    });
    const detM = Uint8Array.from(D.details, (d) => {
      const kn = d.k >= 0 ? D.known[d.k] : null;
      return ((d.m || "") + " " + (kn ? kn.id + " " + kn.x : "")).toLowerCase().includes(q) ? 1 : 0;
    });
    return { c: caseM, i: m(V.inst), a: m(V.api), f: m(V.fw), l: m(V.loss), q: m(V.qty), d: detM };
  }
  function applyFilters() {
    const st = Uint8Array.from(V.status, (_, c) => (S.status.has(c) ? 1 : 0));
    const dt = Uint8Array.from(V.dtype, (_, c) => (S.dtype.has(c) ? 1 : 0));
    const dv = Uint8Array.from(V.dev, (_, c) => (S.dev.has(c) ? 1 : 0));
    const ch = S.change ? Uint8Array.from(V.change, (_, c) => (S.change.has(c) ? 1 : 0)) : null;
    const caseOk = Uint8Array.from(V.case, (_, c) => (S.tag < 0 || ((caseInfo[c] || {}).t || []).includes(S.tag) ? 1 : 0));
    const q = S.text.trim().toLowerCase();
    const tm = q ? textMatches(q) : null;
    let inFinding = null;
    if (S.finding >= 0) { inFinding = new Uint8Array(N); for (const r of F[S.finding].r) inFinding[r] = 1; }
    const out = new Int32Array(N);
    let n = 0;
    for (let i = 0; i < N; i++) {
      if (inFinding && !inFinding[i]) continue;
      if (!st[K.status[i]] || !dt[K.dtype[i]] || !dv[K.dev[i]] || !caseOk[K.case[i]]) continue;
      if (S.loss >= 0 && K.loss[i] !== S.loss) continue;
      if (!S.fw.has(K.fw[i] * 4096 + K.variant[i])) continue;
      if (ch && !ch[K.change[i]]) continue;
      if (tm && !(tm.c[K.case[i]] || tm.i[K.inst[i]] || tm.a[K.api[i]] || tm.f[K.fw[i]] || tm.l[K.loss[i]] || tm.q[K.qty[i]] || (DET[i] >= 0 && tm.d[DET[i]]))) continue;
      out[n++] = i;
    }
    SEL = out.subarray(0, n);
  }

  // ---------- header ----------
  function renderSummary() {
    const h = document.getElementById("summary");
    h.append(el("p", { cls: "muted small", text: "Generated " + D.generated + " by xentcheck " + D.version + " from " + D.files.join(", ") + "." }));
    const line = el("div", { id: "headline", "aria-label": "findings by kind" });
    if (!D.findings) {
      line.append(el("span", { text: "Findings not available" + (D.findingsNote ? " (" + D.findingsNote + ")" : "") + ": " + fmtInt(N) + " results, by status below." }));
      h.append(line);
      return;
    }
    const current = F.filter((f) => f.status !== "fixed");
    const covered = current.reduce((n, f) => n + f.r.length, 0);
    line.append(el("b", { text: fmtInt(current.length) + (current.length === 1 ? " finding" : " findings") + (current.length ? ":" : "") }));
    for (const k of KINDS) {
      const n = current.filter((f) => f.kind === k).length;
      if (n) line.append(el("button", { cls: "count badge k k-" + k, type: "button", "data-kind": k, title: "show only " + k + " findings", onclick: () => { FS.kind = new Set([k]); renderFindingFilters(); renderFindings(); } }, k, el("b", { text: fmtInt(n) })));
    }
    const unexplained = current.filter((f) => !f.known).length;
    line.append(el("button", { cls: "linkish", type: "button", id: "headline-unexplained", onclick: () => { FS.expl = new Set(["unexplained"]); renderFindingFilters(); renderFindings(); } }, fmtInt(unexplained) + " unexplained"));
    line.append(el("span", { cls: "muted", text: "· covering " + fmtInt(covered) + " of " + fmtInt(N) + " results" }));
    const fixed = F.length - current.length;
    if (D.baseline) line.append(el("span", { cls: "muted", text: "· against the baseline: " + fmtInt(current.filter((f) => f.status === "new").length) + " new, " + fmtInt(fixed) + " fixed" }));
    h.append(line);
  }
  function renderRuns() {
    const h = document.getElementById("runs");
    const counts = el("div", { cls: "counts", "aria-label": "counts by status" });
    counts.append(el("span", { text: fmtInt(N) + " results:" }));
    for (const s of SEV) {
      const n = D.counts[s];
      if (!n) continue;
      counts.append(el("button", { cls: "count st-" + s, title: "show only " + s, "data-status": s, onclick: () => { S.status = new Set([V.status.indexOf(s)]); refresh(true); } },
        s, el("b", { text: fmtInt(n) })));
    }
    h.append(counts);
    if (D.baseline) {
      const b = el("div", { cls: "counts", "aria-label": "changes against the baseline" });
      b.append(el("span", { text: "Against the baseline (" + D.baseline.files.join(", ") + "):" }));
      for (const c of ["new", "fixed", "changed", "unchanged"]) {
        const n = D.baseline.counts[c] || 0;
        b.append(el("button", { cls: "count ch-" + c, "data-change": c, onclick: () => { S.change = new Set([V.change.indexOf(c)]); refresh(true); } }, c, el("b", { text: fmtInt(n) })));
      }
      b.append(el("span", { cls: "muted", text: fmtInt(D.baseline.gone) + " earlier results no longer present" }));
      h.append(b);
    }
    if (D.replaced) h.append(el("p", { cls: "muted small", text: D.replaced + " results appeared in more than one file, alike; each is shown once." }));
    if (D.brokenKnown && D.brokenKnown.length) {
      h.append(el("h3", { text: "Documented differences whose predicate raised (" + D.brokenKnown.length + ")" }),
        el("p", { cls: "small muted", text: "These entries are broken (a bug, or an API they rely on changed): the rows they could not judge stay unexplained and name them in known_errors." }));
      const ul = el("ul", { cls: "small", id: "broken-known" });
      for (const k of D.brokenKnown) ul.append(el("li", null, el("code", { text: String(k.id) }), " (" + k.framework + ", " + k.rows + " rows): " + k.error));
      h.append(ul);
    }
    if (D.notReproduced && D.notReproduced.length) {
      h.append(el("h3", { text: "Documented differences that no longer reproduce (" + D.notReproduced.length + ")" }),
        el("p", { cls: "small muted", text: "Entries that apply to the run's versions and whose APIs ran, but that explained no result. Exact for a run of the whole shipped suite; a run of part of it may simply leave out an entry's triggering case." }));
      const ul = el("ul", { cls: "small", id: "not-reproduced" });
      for (const k of D.notReproduced) ul.append(el("li", null, el("code", { text: String(k.id || "") }), " (" + (k.framework || "") + "): " + (k.explanation || "") + " ", el("span", { cls: "muted", text: [].concat(k.apis || []).join(", ") })));
      h.append(ul);
    }
  }

  // ---------- sources: every results file, the shards of one run together ----------
  function renderSources() {
    const h = document.getElementById("sources");
    const groups = D.runGroups || D.runs.map((_, j) => ({ files: [j], count: null, shards: [], missing: [] }));
    h.append(el("p", { cls: "small muted", text: D.runs.length + (D.runs.length === 1 ? " results file" : " results files") + " in " + groups.length + (groups.length === 1 ? " run" : " runs") + ". The shards of one run (the same options, frameworks and versions) merge into it; a framework held at several version sets or machines is named by its label." }));
    const t = el("table", { cls: "runs", id: "sources-table" });
    t.append(el("tr", null, ...["run", "file", "shard", "framework", "versions", "devices", "host", "CPU", "time", "rows", "xentcheck", "cases digest"].map((x) => el("th", { text: x }))));
    groups.forEach((g, gi) => {
      const what = g.count ? "shards " + g.shards.join(", ") + " of " + g.count + (g.missing.length ? " (missing: " + g.missing.join(", ") + ")" : " (complete)") : "";
      g.files.forEach((j, n) => {
        const r = D.runs[j] || {};
        const fws = Object.keys(r.frameworks || {}).sort();
        (fws.length ? fws : [""]).forEach((fw, k) => {
          const info = (r.frameworks || {})[fw] || {};
          const versions = Object.entries(info.versions || {}).map(([p, v]) => p + " " + v).join(", ");
          const devs = Object.entries(info.devices || {}).map(([d, v]) => d + ": " + (v || "— " + ((info.skipped || {})[d] || "not run"))).join("; ");
          const first = k === 0;
          const tr = el("tr", { cls: "source" + (g.missing.length ? " incomplete" : ""), "data-run": String(gi), "data-file": r.file || "" },
            el("td", { text: n === 0 && first ? "run " + (gi + 1) + (what ? ": " + what : "") : "" }),
            el("td", { cls: "mono", text: first ? r.file || "" : "" }), el("td", { text: first ? r.shard || "" : "" }),
            el("td", { text: info.variant || fw }), el("td", { text: versions }), el("td", { text: devs }),
            el("td", { text: first ? r.host || "" : "" }), el("td", { text: first ? r.cpu || "" : "" }), el("td", { text: first ? r.time || "" : "" }),
            el("td", { cls: "n", text: first && r.rows !== undefined ? fmtInt(r.rows) : "" }),
            el("td", { text: first ? r.xentcheck_version || "" : "" }), el("td", { cls: "mono", title: r.cases_digest || "", text: first ? String(r.cases_digest || "").slice(0, 12) : "" }));
          t.append(tr);
        });
      });
    });
    h.append(t);
  }

  // ---------- what each upgrade changed ----------
  function renderUpgrades() {
    const sec = document.getElementById("upgrades-section");
    const U = D.upgrades || [];
    if (!U.length) { sec.hidden = true; return; }
    const h = document.getElementById("upgrades");
    h.append(el("p", { cls: "small muted", text: "Per framework, each version set against the one before it, on the results both ran: findings new in the newer one, fixed in it, and changed (the same finding, in other results, with a worst error moved by more than a factor of 2, or behaving otherwise)." }));
    for (const u of U) {
      const box = el("div", { cls: "upgrade", "data-framework": u.fw });
      box.append(el("h3", { text: u.from + " → " + u.to }));
      box.append(el("p", { cls: "small" }, el("b", { text: u.new.length + " new" }), ", " + u.fixed.length + " fixed, " + u.changed.length + " changed, " + u.unchanged + " unchanged" + (u.notCompared ? " (" + u.notCompared + " not compared: the older version set ran none of their results)" : "")));
      const ul = el("ul", { cls: "small" });
      const item = (what, fi, extra) => {
        const f = F[fi];
        ul.append(el("li", { cls: "up-" + what, "data-id": f.id }, badge(what, "ch-"), " ", el("span", { cls: "badge k k-" + f.kind, text: f.kind }), " ",
          el("button", { cls: "linkish", type: "button", text: f.summary, onclick: () => openFinding(fi) }), extra ? el("span", { cls: "muted", text: " — " + extra }) : null));
      };
      for (const fi of u.new) item("new", fi);
      for (const fi of u.fixed) item("fixed", fi);
      for (const [fi, what] of u.changed) item("changed", fi, what.join("; "));
      if (ul.childNodes.length) box.append(ul);
      h.append(box);
    }
  }

  // ---------- filter bar ----------
  function chipGroup(label, items, set, name, changed) {
    const done = changed || (() => refresh(true));
    const g = el("div", { cls: "facet", role: "group", "aria-label": label, "data-facet": name });
    g.append(el("span", { text: label }));
    for (const it of items) {
      const b = el("button", { cls: "chip", type: "button", "aria-pressed": String(set.has(it.k)), "data-value": it.label, title: "click: toggle; double-click: only this" });
      if (it.dot) b.append(el("span", { cls: "dot " + it.dot }));
      b.append(it.label);
      b.addEventListener("click", () => { if (set.has(it.k)) set.delete(it.k); else set.add(it.k); done(); });
      b.addEventListener("dblclick", () => { set.clear(); set.add(it.k); done(); });
      g.append(b);
    }
    return g;
  }
  function renderFilters() {
    const f = document.getElementById("filters");
    f.replaceChildren();
    const statuses = V.status.map((s, c) => ({ k: c, label: s, dot: "st-" + s })).sort((a, b) => statusSev[a.k] - statusSev[b.k]);
    f.append(chipGroup("status", statuses, S.status, "status"));
    f.append(chipGroup("framework", FWKEYS.map((x) => ({ k: x.k, label: x.label })), S.fw, "framework"));
    const dts = V.dtype.map((s, c) => ({ k: c, label: s })).sort((a, b) => DTYPE_ORDER.indexOf(a.label) - DTYPE_ORDER.indexOf(b.label));
    f.append(chipGroup("dtype", dts, S.dtype, "dtype"));
    f.append(chipGroup("device", V.dev.map((s, c) => ({ k: c, label: s })), S.dev, "device"));
    if (S.change) f.append(chipGroup("baseline", V.change.map((s, c) => ({ k: c, label: s, dot: "ch-" + s })), S.change, "change"));
    const loss = el("select", { "aria-label": "loss", id: "f-loss", onchange: (e) => { S.loss = +e.target.value; refresh(true); } });
    loss.append(el("option", { value: "-1", text: "all losses" }));
    V.loss.map((s, c) => [s, c]).sort().forEach(([s, c]) => loss.append(el("option", { value: String(c), text: s, selected: S.loss === c })));
    const tag = el("select", { "aria-label": "tag", id: "f-tag", onchange: (e) => { S.tag = +e.target.value; refresh(true); } });
    tag.append(el("option", { value: "-1", text: "all tags" }));
    D.tags.map((s, c) => [s, c]).sort().forEach(([s, c]) => tag.append(el("option", { value: String(c), text: s, selected: S.tag === c })));
    const text = el("input", { type: "search", id: "f-text", placeholder: "search case, API, message…", "aria-label": "search", value: S.text });
    let timer = 0;
    text.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(() => { S.text = text.value; refresh(false); }, 200); });
    f.append(el("div", { cls: "facet" }, loss, tag, text,
      el("button", { cls: "btn", type: "button", text: "reset", onclick: () => { resetState(); refresh(true); } })));
    if (S.finding >= 0) f.append(el("span", { cls: "pin", id: "f-finding" }, "finding: " + F[S.finding].summary + " ", el("button", { cls: "btn", type: "button", text: "×", "aria-label": "clear finding", onclick: () => { S.finding = -1; refresh(true); } })));
    if (S.cell) f.append(el("span", { cls: "pin", id: "f-cell" }, "cell: " + S.cell.label + " ", el("button", { cls: "btn", type: "button", text: "×", "aria-label": "clear cell", onclick: () => { S.cell = null; refresh(true); } })));
    f.append(el("span", { id: "shown" }));
  }
  function resetState() {
    S.status = new Set(V.status.map((_, c) => c));
    S.fw = new Set(FWKEYS.map((x) => x.k));
    S.dtype = new Set(V.dtype.map((_, c) => c));
    S.dev = new Set(V.dev.map((_, c) => c));
    if (S.change) S.change = new Set(V.change.map((_, c) => c));
    S.loss = -1; S.tag = -1; S.text = ""; S.cell = null; S.finding = -1;
  }

  // ---------- matrix ----------
  function rowKeyOf(i) { return S.rowMode === "loss" ? K.loss[i] : S.rowMode === "case" ? K.case[i] : K.inst[i]; }
  function rowLabel(k) { return S.rowMode === "loss" ? V.loss[k] : S.rowMode === "case" ? V.case[k] : V.inst[k]; }
  function colKeyOf(i) {
    const base = S.colMode === "api" ? K.api[i] * 4096 + K.fw[i] : K.fw[i];
    return ((base * 4096 + K.variant[i]) * 64 + K.dev[i]) * 64 + K.dtype[i];
  }
  function inCell(i) { return !S.cell || (S.cell.rm === S.rowMode && S.cell.cm === S.colMode && rowKeyOf(i) === S.cell.r && colKeyOf(i) === S.cell.c); }
  function colInfo(i) {
    return { top: fwLabel(i), api: S.colMode === "api" ? V.api[K.api[i]] : "", dev: V.dev[K.dev[i]], dtype: V.dtype[K.dtype[i]] };
  }
  function renderMatrixControls() {
    const c = document.getElementById("matrix-controls");
    c.replaceChildren();
    const sel = (id, label, opts, cur, set) => {
      const s = el("select", { id: id, "aria-label": label, onchange: (e) => { set(e.target.value); S.showAll.clear(); renderMatrix(); } });
      for (const [v, t] of opts) s.append(el("option", { value: v, text: t, selected: v === cur }));
      return el("label", null, label + " ", s, " ");
    };
    c.append(sel("mx-rows", "rows", [["loss", "loss"], ["case", "case"], ["instance", "instance (sweep point)"]], S.rowMode, (v) => { S.rowMode = v; S.colSort = null; }),
      sel("mx-cols", "columns", [["framework", "framework × device × dtype"], ["api", "framework API × device × dtype"]], S.colMode, (v) => { S.colMode = v; S.colSort = null; }),
      sel("mx-sort", "sort rows by", [["name", "name"], ["worst", "worst status"], ["ulp", "largest ULP error"]], S.rowSort, (v) => { S.rowSort = v; S.colSort = null; }),
      el("span", { cls: "muted", text: "Cell: worst status among the filtered results (colour) and the largest ULP error of the results with that status; click a cell to list its results, a column head to sort by it." }));
  }
  function aggregate() {
    // group -> rowKey -> colKey -> {w, u, n, b}
    const groups = new Map();
    const cols = new Map();
    for (let j = 0; j < SEL.length; j++) {
      const i = SEL[j];
      const g = S.rowMode === "loss" ? -1 : K.loss[i];
      let G = groups.get(g);
      if (!G) { G = { rows: new Map(), cols: new Set() }; groups.set(g, G); }
      const rk = rowKeyOf(i), ck = colKeyOf(i);
      if (!cols.has(ck)) cols.set(ck, colInfo(i));
      G.cols.add(ck);
      let R = G.rows.get(rk);
      if (!R) { R = new Map(); G.rows.set(rk, R); }
      let cell = R.get(ck);
      if (!cell) { cell = { w: 99, u: null, n: 0, b: 0, st: {}, z: 0, za: null, zw: false }; R.set(ck, cell); }
      const sv_ = ROWSEV[i];
      const u = ULP[i];
      if (sv_ < cell.w) { cell.w = sv_; cell.u = u; cell.zw = !!ZERO[i]; } // the ULP shown is that of the worst status
      else if (sv_ === cell.w) { if (u !== null && (cell.u === null || u > cell.u)) cell.u = u; if (ZERO[i]) cell.zw = true; }
      if (ZERO[i]) { cell.z++; if (ABS[i] !== null && (cell.za === null || ABS[i] > cell.za)) cell.za = ABS[i]; }
      if (u !== null && (cell.ua === null || cell.ua === undefined || u > cell.ua)) cell.ua = u;
      cell.n++;
      const s = V.status[K.status[i]];
      cell.st[s] = (cell.st[s] || 0) + 1;
    }
    return { groups, cols };
  }
  function colOrder(keys, cols) {
    return [...keys].sort((a, b) => {
      const x = cols.get(a), y = cols.get(b);
      return x.top.localeCompare(y.top) || x.api.localeCompare(y.api) || x.dev.localeCompare(y.dev) || DTYPE_ORDER.indexOf(x.dtype) - DTYPE_ORDER.indexOf(y.dtype);
    });
  }
  function headerRuns(keys, cols, field) {
    const runs = [];
    for (const k of keys) {
      const c = cols.get(k);
      const id = field(c);
      if (runs.length && runs[runs.length - 1].id === id) runs[runs.length - 1].n++;
      else runs.push({ id: id, n: 1, c: c });
    }
    return runs;
  }
  function renderMatrix() {
    const host = document.getElementById("matrix");
    host.replaceChildren();
    const { groups, cols } = aggregate();
    if (!SEL.length) { host.append(el("p", { cls: "muted", text: "No results match the filters." })); return; }
    const devs = new Set([...cols.values()].map((c) => c.dev));
    const gkeys = [...groups.keys()].sort((a, b) => (a < 0 ? "" : V.loss[a]).localeCompare(b < 0 ? "" : V.loss[b]));
    for (const g of gkeys) {
      const G = groups.get(g);
      const keys = colOrder(G.cols, cols);
      if (g >= 0) host.append(el("h3", { text: V.loss[g] + " (" + G.rows.size + " " + (S.rowMode === "case" ? "case" : "instance") + (G.rows.size === 1 ? "" : "s") + ")" }));
      const t = el("table", { cls: "mx", "data-group": g >= 0 ? V.loss[g] : "all" });
      const thead = el("thead");
      const rowLabelHead = S.rowMode === "loss" ? "loss" : S.rowMode;
      const h1 = el("tr", null, el("th", { cls: "rh", rowspan: "3", text: rowLabelHead, title: "sort by name", onclick: () => { S.rowSort = "name"; S.colSort = null; renderMatrix(); } }));
      for (const r of headerRuns(keys, cols, (c) => c.top + "\u0000" + c.api)) {
        h1.append(el("th", { cls: S.colMode === "api" ? "api" : "", colspan: String(r.n), title: r.c.api ? r.c.top + ": " + r.c.api : r.c.top, text: r.c.api ? r.c.api : r.c.top }));
      }
      const h2 = el("tr");
      for (const r of headerRuns(keys, cols, (c) => c.top + "\u0000" + c.api + "\u0000" + c.dev)) h2.append(el("th", { colspan: String(r.n), text: devs.size > 1 || S.colMode !== "api" ? r.c.dev : r.c.dev }));
      const h3 = el("tr");
      for (const k of keys) {
        const c = cols.get(k);
        const sorted = S.colSort && S.colSort.g === g && S.colSort.k === k;
        h3.append(el("th", { cls: sorted ? "sorted" : "", title: "sort rows by this column", text: DTYPE_SHORT[c.dtype] || c.dtype, onclick: () => { S.colSort = { g: g, k: k }; renderMatrix(); } }));
      }
      thead.append(h1, h2, h3);
      t.append(thead);
      let rkeys = [...G.rows.keys()];
      const rowWorst = (R) => { let w = 99, u = -1; for (const c of R.values()) { if (c.w < w) w = c.w; if (c.u !== null && c.u > u) u = c.u; } return [w, u]; };
      if (S.colSort && S.colSort.g === g) {
        const ck = S.colSort.k;
        rkeys.sort((a, b) => {
          const x = G.rows.get(a).get(ck), y = G.rows.get(b).get(ck);
          return (x ? x.w : 100) - (y ? y.w : 100) || (y && y.u !== null ? y.u : -1) - (x && x.u !== null ? x.u : -1) || rowLabel(a).localeCompare(rowLabel(b));
        });
      } else if (S.rowSort === "worst" || S.rowSort === "ulp") {
        const ws = new Map(rkeys.map((k) => [k, rowWorst(G.rows.get(k))]));
        rkeys.sort((a, b) => {
          const x = ws.get(a), y = ws.get(b);
          return S.rowSort === "worst" ? x[0] - y[0] || y[1] - x[1] : y[1] - x[1] || x[0] - y[0];
        });
      } else rkeys.sort((a, b) => rowLabel(a).localeCompare(rowLabel(b)));
      const tb = el("tbody");
      const limit = S.showAll.has(g) ? rkeys.length : MATRIX_ROWS;
      for (const rk of rkeys.slice(0, limit)) {
        const R = G.rows.get(rk);
        let label = rowLabel(rk);
        if (g >= 0 && S.rowMode !== "loss") { const p = V.loss[g] + "/"; if (label.startsWith(p)) label = label.slice(p.length); }
        const tr = el("tr", null, el("th", { cls: "rh", title: rowLabel(rk), text: label }));
        for (const ck of keys) {
          const c = R.get(ck);
          if (!c) { tr.append(el("td", { cls: "e" })); continue; }
          const w = SEV[c.w] || "pass";
          const col = cols.get(ck);
          const tip = rowLabel(rk) + "\n" + col.top + (col.api ? " " + col.api : "") + " · " + col.dev + " · " + col.dtype + "\nworst: " + w +
            "\n" + Object.entries(c.st).sort((a, b) => SEV.indexOf(a[0]) - SEV.indexOf(b[0])).map(([s, n]) => s + " " + n).join(", ") +
            (c.u !== null ? "\nlargest ULP error of the " + w + " results: " + fmt(c.u) : "") +
            (c.ua !== null && c.ua !== undefined && c.ua !== c.u ? "\nlargest ULP error of all: " + fmt(c.ua) : "") +
            (c.z ? "\n" + c.z + " with a golden of 0 (ULP not defined): largest abs error " + fmt(c.za) : "");
          tr.append(el("td", { cls: "c st-" + w, title: tip, "data-status": w, text: c.u !== null ? fmtUlp(c.u) : c.zw ? "–" : "",
            onclick: () => {
              S.cell = { rm: S.rowMode, cm: S.colMode, r: rk, c: ck, label: rowLabel(rk) + " · " + col.top + (col.api ? " " + col.api : "") + " · " + col.dev + " · " + col.dtype };
              S.page = 0; S.open = -1; renderFilters(); renderList(); updateShown();
              document.getElementById("results").scrollIntoView({ behavior: "smooth" });
            } }));
        }
        tb.append(tr);
      }
      t.append(tb);
      host.append(el("div", { cls: "mx-wrap" }, t));
      if (rkeys.length > limit) host.append(el("button", { cls: "btn", type: "button", text: "show all " + rkeys.length + " rows", onclick: () => { S.showAll.add(g); renderMatrix(); } }));
    }
  }

  // ---------- pictures ----------
  const BINS = [["0", 0], ["≤1", 1], ["≤4", 4], ["≤16", 16], ["≤256", 256], ["≤64k", 65536], [">64k", Infinity]];
  function binOf(u) { for (let b = 0; b < BINS.length; b++) if (u <= BINS[b][1]) return b; return BINS.length - 1; }
  function statusColour(s) { return getComputedStyle(document.documentElement).getPropertyValue("--" + s).trim() || "#888"; }
  function renderCharts() {
    const host = document.getElementById("charts");
    host.replaceChildren();
    host.append(el("h3", { text: "ULP error per framework and dtype" }),
      el("p", { cls: "muted small", text: "How many filtered results have their largest error in each ULP range (units in the last place of the dtype under test), stacked by status. Results without a number (raised, non-finite, or a golden of 0 where a ULP is not defined) are left out." }));
    const statusesShown = SEV.filter((s) => D.counts[s]);
    const legend = el("div", { cls: "legend" });
    for (const s of statusesShown) legend.append(el("span", null, el("span", { cls: "badge st-" + s, text: s })));
    host.append(legend);
    // counts[fw][dtype][bin][status]
    const agg = new Map();
    for (let j = 0; j < SEL.length; j++) {
      const i = SEL[j], u = ULP[i];
      if (u === null) continue;
      const fk = fwLabel(i), dt = V.dtype[K.dtype[i]];
      let F = agg.get(fk); if (!F) { F = new Map(); agg.set(fk, F); }
      let T = F.get(dt); if (!T) { T = BINS.map(() => ({})); F.set(dt, T); }
      const s = V.status[K.status[i]], b = binOf(u);
      T[b][s] = (T[b][s] || 0) + 1;
    }
    const grid = el("div", { cls: "charts", id: "ulp-charts" });
    const colours = Object.fromEntries(SEV.map((s) => [s, statusColour(s)]));
    for (const fk of [...agg.keys()].sort()) {
      const F = agg.get(fk);
      for (const dt of [...F.keys()].sort((a, b) => DTYPE_ORDER.indexOf(a) - DTYPE_ORDER.indexOf(b))) {
        const T = F.get(dt);
        const totals = T.map((b) => Object.values(b).reduce((x, y) => x + y, 0));
        const max = Math.max(1, ...totals);
        const W = 240, H = 96, pad = 16, bw = (W - 8) / BINS.length;
        const svg = sv("svg", { viewBox: "0 0 " + W + " " + (H + pad + 4), role: "img", "aria-label": fk + " " + dt + " ULP histogram" });
        T.forEach((b, bi) => {
          let y = H;
          for (const s of SEV) {
            const n = b[s]; if (!n) continue;
            const h = Math.max(1, Math.sqrt(n / max) * (H - 10));
            y -= h;
            const r = sv("rect", { x: 4 + bi * bw + 2, y: y, width: bw - 4, height: h, fill: colours[s] });
            r.append(sv("title", {}, BINS[bi][0] + " ULP: " + s + " " + n));
            svg.append(r);
          }
          svg.append(sv("text", { x: 4 + bi * bw + bw / 2, y: H + 11, "text-anchor": "middle" }, BINS[bi][0]));
          if (totals[bi]) svg.append(sv("text", { x: 4 + bi * bw + bw / 2, y: Math.max(8, y - 2), "text-anchor": "middle" }, fmtUlp(totals[bi])));
        });
        grid.append(el("div", { cls: "chart" }, el("h4", { text: fk + " · " + dt }), svg));
      }
    }
    if (!agg.size) grid.append(el("p", { cls: "muted", text: "No result with a ULP error matches the filters." }));
    host.append(grid);
    renderDeviceChart(host, colours);
  }
  function renderDeviceChart(host, colours) {
    host.append(el("h3", { text: "CPU vs GPU" }));
    const devs = new Set(V.dev);
    if (!(devs.has("cpu") && devs.has("gpu"))) {
      host.append(el("p", { cls: "muted small", id: "device-note", text: "These results hold only " + [...devs].join(", ") + " runs: there is no CPU vs GPU comparison. Run with --device all on a machine with a GPU (or merge a GPU box's results file)." }));
      return;
    }
    const cpu = V.dev.indexOf("cpu"), gpu = V.dev.indexOf("gpu");
    const pairs = new Map();
    for (let j = 0; j < SEL.length; j++) {
      const i = SEL[j];
      if (K.dev[i] !== cpu && K.dev[i] !== gpu) continue;
      const k = K.inst[i] + ":" + K.api[i] + ":" + K.fw[i] + ":" + K.variant[i] + ":" + K.dtype[i] + ":" + K.qty[i];
      let p = pairs.get(k); if (!p) { p = [-1, -1]; pairs.set(k, p); }
      p[K.dev[i] === cpu ? 0 : 1] = i;
    }
    const byFw = new Map();
    const points = [];
    for (const [a, b] of pairs.values()) {
      if (a < 0 || b < 0) continue;
      const key = fwLabel(a) + " · " + V.dtype[K.dtype[a]];
      let s = byFw.get(key); if (!s) { s = { n: 0, diff: 0, worse: 0, better: 0 }; byFw.set(key, s); }
      s.n++;
      if (K.status[a] !== K.status[b]) { s.diff++; if (ROWSEV[b] < ROWSEV[a]) s.worse++; else s.better++; }
      if (ULP[a] !== null && ULP[b] !== null && points.length < 6000) points.push([ULP[a], ULP[b], K.status[a] !== K.status[b]]);
    }
    const t = el("table", { id: "device-table", cls: "small" });
    t.append(el("tr", null, ...["framework · dtype", "pairs", "status differs", "GPU worse", "GPU better"].map((x) => el("th", { text: x }))));
    for (const k of [...byFw.keys()].sort()) { const s = byFw.get(k); t.append(el("tr", null, el("td", { text: k }), el("td", { text: fmtInt(s.n) }), el("td", { text: fmtInt(s.diff) }), el("td", { text: fmtInt(s.worse) }), el("td", { text: fmtInt(s.better) }))); }
    const W = 260, H = 260, P = 30;
    const tr = (u) => Math.log10(1 + u);
    const m = Math.max(1, ...points.map((p) => Math.max(tr(p[0]), tr(p[1]))));
    const svg = sv("svg", { viewBox: "0 0 " + (W + P) + " " + (H + P), role: "img", "aria-label": "CPU vs GPU ULP error scatter", style: "max-width:320px" });
    svg.append(sv("line", { x1: P, y1: H, x2: P + W, y2: 0, stroke: "currentColor", "stroke-opacity": "0.3" }));
    svg.append(sv("text", { x: P + W / 2, y: H + 22, "text-anchor": "middle" }, "CPU ULP error (log 1+u)"), sv("text", { x: 10, y: H / 2, transform: "rotate(-90 10 " + H / 2 + ")", "text-anchor": "middle" }, "GPU ULP error"));
    for (const [a, b, d] of points) svg.append(sv("circle", { cx: P + (tr(a) / m) * W, cy: H - (tr(b) / m) * H, r: 2, fill: d ? colours.mismatch : colours.pass, "fill-opacity": "0.6" }));
    host.append(el("div", { cls: "cols2" }, el("div", null, t), el("div", { cls: "chart" }, el("h4", { text: "largest ULP error, same result on CPU and GPU (orange: status differs)" }), svg)));
  }

  // ---------- results list ----------
  const LIST_COLS = [
    ["status", "status"], ["change", "baseline"], ["fw", "framework"], ["api", "API"], ["inst", "case / instance"],
    ["dev", "device"], ["dtype", "dtype"], ["qty", "quantity"], ["ulp", "max ULP"], ["abs", "max abs"], ["rel", "max rel"],
  ];
  function sortedRows() {
    const rows = Array.from(S.cell ? SEL.filter(inCell) : SEL);
    const k = S.sort, dir = S.asc ? 1 : -1;
    const num = (arr) => (a, b) => { const x = arr[a], y = arr[b]; return (x === null ? -1 : x) - (y === null ? -1 : y); };
    const str = (name) => (a, b) => V[name][K[name][a]].localeCompare(V[name][K[name][b]]);
    let cmp;
    if (k === "status") cmp = (a, b) => ROWSEV[a] - ROWSEV[b] || ((ULP[b] === null ? -1 : ULP[b]) - (ULP[a] === null ? -1 : ULP[a]));
    else if (k === "ulp") cmp = num(ULP); else if (k === "abs") cmp = num(ABS); else if (k === "rel") cmp = num(REL);
    else if (k === "fw") cmp = (a, b) => fwLabel(a).localeCompare(fwLabel(b));
    else cmp = str(k);
    // cache string comparisons on codes: compare codes' ranks
    if (k !== "status" && k !== "ulp" && k !== "abs" && k !== "rel" && k !== "fw") {
      const rank = new Map(V[k].map((s, c) => [c, s]).sort((a, b) => a[1].localeCompare(b[1])).map(([c], r) => [c, r]));
      const R = Int32Array.from(V[k], (_, c) => rank.get(c));
      cmp = (a, b) => R[K[k][a]] - R[K[k][b]];
    }
    rows.sort((a, b) => dir * cmp(a, b) || ROWSEV[a] - ROWSEV[b] || a - b);
    return rows;
  }
  function renderList() {
    const host = document.getElementById("list");
    host.replaceChildren();
    const rows = sortedRows();
    const pages = Math.max(1, Math.ceil(rows.length / PAGE));
    if (S.page >= pages) S.page = pages - 1;
    const pager = () => el("div", { cls: "pager" },
      el("button", { cls: "btn", type: "button", text: "‹ previous", disabled: S.page === 0, onclick: () => { S.page--; S.open = -1; renderList(); } }),
      el("span", { cls: "small", text: rows.length ? "results " + fmtInt(S.page * PAGE + 1) + "–" + fmtInt(Math.min(rows.length, (S.page + 1) * PAGE)) + " of " + fmtInt(rows.length) : "no results match" }),
      el("button", { cls: "btn", type: "button", text: "next ›", disabled: S.page >= pages - 1, onclick: () => { S.page++; S.open = -1; renderList(); } }));
    host.append(pager());
    const t = el("table", { cls: "list", id: "result-table" });
    const cols = LIST_COLS.filter(([k]) => k !== "change" || S.change);
    t.append(el("thead", null, el("tr", null, ...cols.map(([k, label]) => el("th", {
      cls: S.sort === k ? "sorted" + (S.asc ? " asc" : "") : "", text: label, title: "sort",
      onclick: () => { if (S.sort === k) S.asc = !S.asc; else { S.sort = k; S.asc = k === "status" || !["ulp", "abs", "rel"].includes(k); } S.page = 0; renderList(); } })))));
    const tb = el("tbody");
    for (const i of rows.slice(S.page * PAGE, (S.page + 1) * PAGE)) {
      const st = V.status[K.status[i]];
      const tr = el("tr", { cls: "r" + (S.open === i ? " open" : ""), "data-row": String(i), tabindex: "0" });
      for (const [k] of cols) {
        if (k === "status") tr.append(el("td", null, badge(st)));
        else if (k === "change") tr.append(el("td", null, badge(V.change[K.change[i]], "ch-")));
        else if (k === "fw") tr.append(el("td", { text: fwLabel(i) }));
        else if (k === "api") tr.append(el("td", { cls: "api mono", text: V.api[K.api[i]] }));
        else if (k === "inst") tr.append(el("td", { cls: "inst", text: V.inst[K.inst[i]] }));
        else if (k === "ulp") tr.append(el("td", { cls: "n", text: fmt(ULP[i]), title: ZERO[i] ? ZERO_NOTE : null }));
        else if (k === "abs") tr.append(el("td", { cls: "n", text: fmt(ABS[i]) }));
        else if (k === "rel") tr.append(el("td", { cls: "n", text: fmt(REL[i]) }));
        else tr.append(el("td", { text: V[k][K[k][i]] }));
      }
      const toggle = () => { S.open = S.open === i ? -1 : i; renderList(); const o = document.querySelector(".drill"); if (o) o.scrollIntoView({ block: "nearest" }); };
      tr.addEventListener("click", toggle);
      tr.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); toggle(); } });
      tb.append(tr);
      if (S.open === i) tb.append(el("tr", { cls: "drill-row" }, el("td", { colspan: String(cols.length) }, drill(i))));
    }
    t.append(tb);
    host.append(t);
    if (rows.length > PAGE) host.append(pager());
  }

  // ---------- findings list ----------
  const ACCURACY = {
    precision: "precision: the right formula, fewer correct digits than the dtype allows",
    wrong: "wrong: not the value the formula gives, at any precision",
  };
  let preIds = 0;
  // a heading with a copy button, and the text in a <pre> the button copies (aria-controls names it)
  function scriptBlock(title, text, cls, id) {
    const pre = el("pre", { cls: cls, id: "pre-" + ++preIds, text: text });
    const note = el("span", { cls: "toast", "aria-live": "polite" });
    const head = el("div", { cls: "script-head" }, title ? el("h4", { text: title }) : null,
      el("button", { cls: "btn copy", type: "button", id: id || null, "aria-controls": pre.id, text: "copy", onclick: (e) => { e.stopPropagation(); copyText(pre.textContent, note); } }), note);
    return el("div", { cls: "script-block" }, head, pre);
  }
  function findingMatches(f, q) {
    if (!FS.kind.has(f.kind) || !FS.fw.has(labelOf(f)) || !FS.expl.has(explOf(f))) return false;
    if (D.baseline && !FS.status.has(f.status)) return false;
    if (!q) return true;
    return [f.summary, f.id, f.loss, f.quantity, f.known || "", f.explanation || "", ...f.apis, ...f.cases].join(" ").toLowerCase().includes(q);
  }
  function renderFindingFilters() {
    const host = document.getElementById("findings-filters");
    host.replaceChildren();
    if (!D.findings) return;
    const again = () => { renderFindingFilters(); renderFindings(); };
    host.append(chipGroup("kind", KINDS.map((k) => ({ k: k, label: k, dot: "k-" + k })), FS.kind, "f-kind", again));
    host.append(chipGroup("framework", F_FWS.map((k) => ({ k: k, label: k })), FS.fw, "f-framework", again));
    host.append(chipGroup("explained", ["unexplained", "known"].map((k) => ({ k: k, label: k })), FS.expl, "f-known", again));
    if (D.baseline) host.append(chipGroup("baseline", F_STATUS.map((k) => ({ k: k, label: k, dot: "ch-" + k })), FS.status, "f-status", again));
    const text = el("input", { type: "search", id: "f-findings-text", placeholder: "search summary, API, case…", "aria-label": "search findings", value: FS.text });
    let timer = 0;
    text.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(() => { FS.text = text.value; renderFindings(); }, 200); });
    host.append(el("div", { cls: "facet" }, text, el("button", { cls: "btn", type: "button", text: "reset", onclick: () => {
      FS.kind = new Set(KINDS); FS.fw = new Set(F_FWS); FS.expl = new Set(["unexplained", "known"]); FS.status = new Set(F_STATUS); FS.text = ""; again(); } })),
    el("span", { id: "findings-shown", cls: "small muted" }));
  }
  function renderFindings() {
    const host = document.getElementById("findings");
    host.replaceChildren();
    if (!D.findings) {
      host.append(el("p", { cls: "muted", id: "findings-note", text: "No findings to show" + (D.findingsNote ? ": " + D.findingsNote : "") + ". The results are below." }));
      return;
    }
    const q = FS.text.trim().toLowerCase();
    const shown = [];
    F.forEach((f, fi) => { if (findingMatches(f, q)) shown.push(fi); });
    const s = document.getElementById("findings-shown");
    if (s) s.textContent = fmtInt(shown.length) + " of " + fmtInt(F.length) + " findings match";
    if (!F.length) { host.append(el("p", { cls: "muted", id: "findings-note", text: "No findings: every result passed or is unsupported." })); return; }
    if (!shown.length) { host.append(el("p", { cls: "muted", text: "No finding matches the filters." })); return; }
    // grouped by framework; groups ordered by their most severe finding, findings by severity
    const groups = new Map();
    for (const fi of shown) { const fw = labelOf(F[fi]); if (!groups.has(fw)) groups.set(fw, []); groups.get(fw).push(fi); }
    const order = [...groups.keys()].sort((a, b) => F[groups.get(a)[0]].severity - F[groups.get(b)[0]].severity || a.localeCompare(b));
    for (const fw of order) {
      const list = groups.get(fw).sort((a, b) => F[a].severity - F[b].severity || a - b);
      const g = el("section", { cls: "fgroup", "data-framework": fw });
      g.append(el("h3", { text: fw + " (" + list.length + (list.length === 1 ? " finding)" : " findings)") }));
      for (const fi of list) g.append(findingItem(fi));
      host.append(g);
    }
  }
  function findingItem(fi) {
    const f = F[fi];
    const item = el("details", { cls: "finding", id: "finding-" + fi, "data-index": String(fi), "data-kind": f.kind, "data-status": f.status || "", "data-known": explOf(f) });
    const meta = [fmtInt(f.rows) + (f.rows === 1 ? " result" : " results"), f.dtypes.join(", ")].filter(Boolean).join(" · ");
    item.append(el("summary", null, el("span", { cls: "badge k k-" + f.kind, text: f.kind }), el("span", { cls: "f-summary", text: f.summary }),
      f.known ? el("code", { cls: "f-meta", text: f.known }) : el("span", { cls: "f-meta unexplained", text: "unexplained" }),
      D.baseline && f.status ? badge(f.status, "ch-") : null, el("span", { cls: "f-meta", text: meta })));
    item.addEventListener("toggle", () => { if (item.open && !item.querySelector(".f-body")) item.append(findingBody(fi)); });
    return item;
  }
  function rowLine(i) {
    return [V.inst[K.inst[i]], V.api[K.api[i]], V.dev[K.dev[i]], V.dtype[K.dtype[i]], V.qty[K.qty[i]]].join(" · ");
  }
  function findingBody(fi) {
    const f = F[fi];
    const box = el("div", { cls: "f-body" });
    const dl = el("dl");
    const add = (k, v) => { if (v !== null && v !== undefined && v !== "" && !(Array.isArray(v) && !v.length)) dl.append(el("dt", { text: k }), el("dd", null, v instanceof Node ? v : Array.isArray(v) ? v.join(", ") : String(v))); };
    add("framework", labelOf(f) + (f.label && f.label !== f.framework ? " (framework " + f.framework + ")" : ""));
    add("APIs", el("code", { text: f.apis.join(", ") }));
    add("loss", f.loss);
    add("quantity", f.quantity);
    add("dtypes", f.dtypes);
    add("devices", f.devices);
    add("cases", f.cases.length > 12 ? f.cases.slice(0, 12).join(", ") + ", … " + (f.cases.length - 12) + " more" : f.cases);
    add("results", fmtInt(f.rows) + (f.gone ? " (" + fmtInt(f.gone) + " not in this run)" : ""));
    add("explanation", f.known ? el("span", null, el("code", { text: f.known }), ": " + (f.explanation || "") + " ", f.link ? link(f.link, "source") : null) : el("span", { cls: "unexplained", text: "unexplained: no known entry covers it" }));
    if (D.baseline) add("baseline", f.status);
    if (f.upgrade) add("upgrade", f.upgrade.status + " since " + f.upgrade.from + (f.upgrade.changes.length ? ": " + f.upgrade.changes.join("; ") : ""));
    if (f.fixed_in) add("fixed in", f.fixed_in);
    add("id", el("code", { text: f.id }));
    if (f.w >= 0) add("worst", el("button", { cls: "linkish worst", type: "button", text: rowLine(f.w) + " — max abs " + fmt(ABS[f.w]) + ", max ULP " + (ZERO[f.w] ? "–" : fmt(ULP[f.w])), onclick: () => showRow(f.w, fi) }));
    else if (f.worst) add("worst", [f.worst.instance, f.worst.api, f.worst.device, f.worst.dtype, f.worst.quantity, f.worst.status].join(" · "));
    box.append(dl);
    if (f.repro) box.append(scriptBlock("Reproduction script", f.repro, "finding-script"));
    else box.append(el("h4", { text: "Reproduction script" }), el("p", { cls: "muted script-missing", text: "no script" + (f.repro_note ? ": " + f.repro_note : "") }));
    if (f.draft) box.append(scriptBlock("Issue draft (Markdown)", f.draft, "finding-draft"));
    box.append(el("h4", { text: "Results (" + fmtInt(f.r.length) + ")" }));
    if (f.r.length) {
      const t = el("table", { cls: "f-rows" });
      t.append(el("tr", null, ...["status", "API", "case / instance", "device", "dtype", "quantity", "max ULP", "max abs"].map((x) => el("th", { text: x }))));
      const LIMIT = 20;
      for (const i of f.r.slice(0, LIMIT)) {
        const tr = el("tr", { cls: "fr", "data-row": String(i), tabindex: "0", title: "open this result's drill-down below" },
          el("td", null, badge(V.status[K.status[i]])), el("td", { cls: "mono", text: V.api[K.api[i]] }), el("td", { text: V.inst[K.inst[i]] }),
          el("td", { text: V.dev[K.dev[i]] }), el("td", { text: V.dtype[K.dtype[i]] }), el("td", { text: V.qty[K.qty[i]] }),
          el("td", { cls: "n", text: fmt(ULP[i]), title: ZERO[i] ? ZERO_NOTE : null }), el("td", { cls: "n", text: fmt(ABS[i]) }));
        tr.addEventListener("click", () => showRow(i, fi));
        tr.addEventListener("keydown", (e) => { if (e.key === "Enter") showRow(i, fi); });
        t.append(tr);
      }
      box.append(t);
      box.append(el("button", { cls: "btn show-rows", type: "button", text: (f.r.length > LIMIT ? "all " + fmtInt(f.r.length) + " results" : "these results") + " in the matrix and list below",
        onclick: () => { resetState(); S.finding = fi; refresh(true); document.getElementById("matrix-section").scrollIntoView(); } }));
    } else box.append(el("p", { cls: "muted", text: f.status === "fixed" ? "It no longer shows in this run (fixed since the baseline)." : "None of its results is in this page." }));
    return box;
  }
  // the results list filtered to finding fi, with row i's drill-down open
  function showRow(i, fi) {
    resetState();
    S.finding = fi;
    refresh(true);
    const p = sortedRows().indexOf(i);
    if (p >= 0) { S.page = Math.floor(p / PAGE); S.open = i; renderList(); }
    (document.getElementById("drill") || document.getElementById("results")).scrollIntoView({ block: "start" });
  }
  function openFinding(fi) {
    FS.kind = new Set(KINDS); FS.fw = new Set(F_FWS); FS.expl = new Set(["unexplained", "known"]); FS.status = new Set(F_STATUS); FS.text = "";
    renderFindingFilters(); renderFindings();
    const item = document.getElementById("finding-" + fi);
    if (item) { item.open = true; if (!item.querySelector(".f-body")) item.append(findingBody(fi)); item.scrollIntoView({ block: "start" }); }
  }

  // ---------- drill-down ----------
  function multiIndex(flat, shape) {
    const idx = [];
    for (let d = shape.length - 1; d >= 0; d--) { idx.unshift(flat % shape[d]); flat = Math.floor(flat / shape[d]); }
    return idx;
  }
  const asNum = (v) => (v === "nan" ? NaN : v === "inf" ? Infinity : v === "-inf" ? -Infinity : v);
  function samplesTable(d, dtype) {
    const shape = d.sh || [];
    const at = d.i || [];
    let flat = 0;
    for (let k = 0; k < at.length; k++) flat = flat * (shape[k] || 1) + at[k];
    const lo = Math.max(0, flat - 1);
    const t = el("table", { cls: "samples" });
    t.append(el("tr", null, ...["element", "expected (float64 golden)", "actual (" + dtype + ")", "abs error", "rel error"].map((x) => el("th", { text: x }))));
    const n = Math.max((d.ex || []).length, (d.ac || []).length);
    for (let j = 0; j < n; j++) {
      const e = asNum((d.ex || [])[j]), a = asNum((d.ac || [])[j]);
      const diff = typeof e === "number" && typeof a === "number" && isFinite(e) && isFinite(a) ? Math.abs(a - e) : null;
      const rel = diff !== null && e !== 0 ? diff / Math.abs(e) : null;
      const pos = shape.length ? "[" + multiIndex(lo + j, shape).join(", ") + "]" : String(lo + j);
      t.append(el("tr", { cls: shape.length && lo + j === flat ? "at" : "" }, el("td", { cls: "mono", text: pos }),
        el("td", { cls: "mono", text: String((d.ex || [])[j] ?? "–") }), el("td", { cls: "mono", text: String((d.ac || [])[j] ?? "–") }),
        el("td", { cls: "mono", text: fmt(diff) }), el("td", { cls: "mono", text: fmt(rel) })));
    }
    return t;
  }
  function reproText(detIdx) {
    const R = D.repro;
    if (!R || !R.rows) return null;
    const spec = R.rows[String(detIdx)];
    if (!spec || !spec.length) return null;
    const parts = spec.slice(0, -1).map((k) => (R.parts || {})[k] || "");
    return parts.join("") + spec[spec.length - 1];
  }
  function copyText(text, note) {
    const done = () => { note.textContent = "copied"; setTimeout(() => (note.textContent = ""), 1500); };
    const fallback = () => {
      const ta = el("textarea", { style: "position:fixed;left:-9999px" });
      ta.value = text; document.body.append(ta); ta.select();
      try { document.execCommand("copy"); done(); } catch (e) { note.textContent = "select the text and copy it"; }
      ta.remove();
    };
    if (navigator.clipboard && navigator.clipboard.writeText) navigator.clipboard.writeText(text).then(done, fallback); else fallback();
  }
  function sourceBlock(ci) {
    const box = el("div", { cls: "source" });
    const file = ci.f >= 0 ? D.files_src[ci.f] : null;
    if (!file) { box.append(el("p", { cls: "muted", text: "source not available" })); return box; }
    box.append(el("div", { cls: "small" }, el("code", { text: file.p + ":" + ci.l })));
    if (file.t === null) { box.append(el("p", { cls: "muted", text: "source not available (the run did not record the file and it is not on disk)" })); return box; }
    const lines = file.t.split("\n");
    const show = (from, to) => lines.slice(from - 1, to).map((s, j) => String(from + j).padStart(4, " ") + "  " + s).join("\n");
    const pre = el("pre", { cls: "yaml", text: show(ci.l, Math.max(ci.l, ci.e)) });
    let whole = false;
    const btn = el("button", { cls: "btn", type: "button", text: "whole file", onclick: () => { whole = !whole; pre.textContent = whole ? show(1, lines.length) : show(ci.l, Math.max(ci.l, ci.e)); btn.textContent = whole ? "this case only" : "whole file"; } });
    box.append(pre, btn);
    return box;
  }
  function drill(i) {
    const box = el("div", { cls: "drill", id: "drill" });
    const st = V.status[K.status[i]];
    const ci = caseInfo[K.case[i]] || { d: "", t: [], f: -1, l: 0, e: 0 };
    const det = DET[i] >= 0 ? D.details[DET[i]] : null;
    const dtype = V.dtype[K.dtype[i]];
    const run = D.runs[K.run[i]] || {};
    const fwInfo = (run.frameworks || {})[V.fw[K.fw[i]]] || {};
    const devName = (fwInfo.devices || {})[V.dev[K.dev[i]]];
    box.append(el("h3", null, badge(st), " ", V.inst[K.inst[i]]));
    if (ci.d) box.append(el("p", { cls: "desc", text: ci.d }));
    const fi = ROWFINDING[i];
    if (fi >= 0) box.append(el("div", { cls: "why", id: "drill-finding" }, el("b", { text: "Finding " }), el("span", { cls: "badge k k-" + F[fi].kind, text: F[fi].kind }), " ",
      el("button", { cls: "linkish", type: "button", text: F[fi].summary, onclick: () => openFinding(fi) })));
    const kn = det && det.k >= 0 ? D.known[det.k] : null;
    if (kn) box.append(el("div", { cls: "why" }, el("b", { text: "Documented difference " }), el("code", { text: kn.id }), ": " + kn.x + " ", link(kn.u, "source"),
      det.us ? el("span", { cls: "muted", text: " (would otherwise be " + det.us + ")" }) : null));
    const dl = el("dl");
    const add = (k, v) => { if (v !== null && v !== undefined && v !== "") dl.append(el("dt", { text: k }), el("dd", null, v instanceof Node ? v : String(v))); };
    add("case", V.case[K.case[i]]);
    add("loss", V.loss[K.loss[i]]);
    add("framework", fwLabel(i) + (Object.keys(fwInfo.versions || {}).length ? " (" + Object.entries(fwInfo.versions).map(([k, v]) => k + " " + v).join(", ") + ")" : ""));
    add("API", el("code", { text: V.api[K.api[i]] }));
    add("device", V.dev[K.dev[i]] + (devName ? " — " + devName : ""));
    add("dtype", dtype + (det && det.od && det.od !== dtype ? " (output " + det.od + ")" : ""));
    add("quantity", V.qty[K.qty[i]]);
    add("params", el("code", { text: JSON.stringify(D.params[K.inst[i]] || {}) }));
    add("tags", (ci.t || []).map((t) => D.tags[t]).join(", "));
    if (ci.x) add("expect_error", "yes: the right behaviour is to reject the input");
    add("errors", "max abs " + fmt(ABS[i]) + " · max rel " + fmt(REL[i]) + " · max ULP " + (ZERO[i] ? "– (" + ZERO_NOTE + ")" : fmt(ULP[i])) + (det && det.rt !== undefined && det.rt !== null ? " · tolerance rtol " + fmt(det.rt) + ", atol " + fmt(det.at) : ""));
    if (det && (det.al !== undefined || det.xs !== undefined)) add("criterion", (det.cr || "") + (det.al !== undefined ? " · allowed " + fmt(det.al) + " ULP at the worst element" : "") + (det.xs !== undefined ? " · error / allowance " + fmt(det.xs) + (det.xs > 1 ? " (fails)" : "") : ""));
    if (det && det.acc) add("accuracy", (ACCURACY[det.acc] || det.acc) + (typeof det.dl === "number" ? " — " + fmt(det.dl) + " decimal digits lost" : ""));
    if (det) { add("message", det.m); add("behaviour", det.b); }
    if (S.change) add("baseline", V.change[K.change[i]]);
    add("run", [run.file, run.time, run.host].filter(Boolean).join(" · "));
    box.append(dl);
    const left = el("div"), right = el("div");
    if (det && ((det.ex || []).length || (det.ac || []).length)) {
      left.append(el("h4", { text: "Expected vs actual" + (det.i && det.i.length ? " around the worst element [" + det.i.join(", ") + "]" : "") + (det.sh ? ", shape [" + det.sh.join(", ") + "]" : "") }), samplesTable(det, dtype));
    } else if (!det) {
      left.append(el("p", { cls: "muted", text: "A passing result: only its errors are kept." }));
    }
    const inp = D.inputs[K.inst[i]];
    left.append(el("h4", { text: "Inputs" }));
    if (inp) {
      const t = el("table", { cls: "inputs" });
      t.append(el("tr", null, ...["input", "shape", "values (as generated, before rounding to " + dtype + ")"].map((x) => el("th", { text: x }))));
      for (const [name, a] of Object.entries(inp)) {
        const stats = a.stats ? Object.entries(a.stats).map(([k, v]) => k + " " + v).join(" · ") : "";
        t.append(el("tr", null, el("td", { text: name }), el("td", { cls: "mono", text: "[" + a.shape.join(", ") + "] " + a.dtype }),
          el("td", null, el("pre", { text: a.text }), stats ? el("div", { cls: "small muted", text: stats }) : null)));
      }
      left.append(t);
    } else left.append(el("p", { cls: "muted", text: "inputs not available (the case file could not be loaded)" }));
    right.append(el("h4", { text: "Case source" }), sourceBlock(ci));
    box.append(el("div", { cls: "cols2" }, left, right));
    const script = det ? reproText(DET[i]) : null;
    const short = fi >= 0 ? F[fi].repro : null;
    if (short) {
      box.append(scriptBlock("Reproduction script (the finding's)", short, "script", "copy-script"));
      if (script) {
        const more = el("details", { cls: "full-script" }, el("summary", { text: "Full verifying script of this result (" + fmtInt(script.split("\n").length) + " lines: the adapter code xentcheck ran, copied in)" }));
        more.append(scriptBlock("", script, "script-full", "copy-full-script"));
        box.append(more);
      }
    } else if (script) box.append(scriptBlock("Reproduction script", script, "script", "copy-script"));
    else {
      box.append(el("div", { cls: "script-head" }, el("h4", { text: "Reproduction script" })));
      box.append(el("p", { cls: "muted script-missing", text: det ? "reproduction script not available" + (D.reproNote ? " (" + D.reproNote + ")" : "") : "no reproduction script for a passing result" }));
    }
    box.addEventListener("click", (e) => e.stopPropagation());
    return box;
  }

  // ---------- wiring ----------
  function updateShown() {
    const s = document.getElementById("shown");
    if (s) s.textContent = fmtInt(SEL.length) + " of " + fmtInt(N) + " results match";
  }
  function refresh(filtersChanged) {
    applyFilters();
    S.page = 0; S.open = -1;
    if (filtersChanged) renderFilters();
    updateShown();
    renderMatrix();
    renderCharts();
    renderList();
  }
  renderSummary();
  renderFindingFilters();
  renderFindings();
  renderSources();
  renderUpgrades();
  renderRuns();
  renderMatrixControls();
  refresh(true);
  document.documentElement.setAttribute("data-ready", "1");
})();
