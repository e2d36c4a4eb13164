// The Quotewise engine's dashboard: plain DOM and <canvas>, no library. It holds no data of its own:
// everything comes from the engine's API (Authorization: Bearer KEY) and /stream (the key as the
// first message). The key lives in this tab's sessionStorage only. See docs/dashboard.md.
"use strict";

(() => {
  const STORE_KEY = "quotewise.key";
  const ROLES = ["viewer", "trader", "admin"];
  const HISTORY = 2400; // points of inventory and P&L kept per maker (10 minutes at 4 a second)
  const EVENTS = 300; // lines of risk events and audit kept per maker
  const REFRESH_MS = 5000; // the makers table is also read whole this often (makers not running here)
  const LIGHTS = {
    ok: "green",
    reduce_only: "amber", paused: "amber", stale: "amber", finishing: "amber",
    halted: "red", failed: "red",
  };

  const state = {
    key: null,
    role: null,
    makers: new Map(), // id -> the maker's latest fields (REST status merged with /stream messages)
    books: [], // each book's GET /books/{name}: makers, totals, limits, breaches (read with the table)
    history: new Map(), // id -> [{t, position, pnl}]
    events: new Map(), // id -> {seen: Set, lines: [{ts, kind, text}]}
    selected: null,
    ws: null,
    timer: null,
    drawPending: false,
  };

  const $ = (id) => document.getElementById(id);
  const can = (role) => ROLES.indexOf(state.role) >= ROLES.indexOf(role);

  // -- the API ------------------------------------------------------------------------------------
  function detail(data, status) {
    const d = data && data.detail;
    if (typeof d === "string") return d;
    if (Array.isArray(d)) return d.map((e) => `${(e.loc || []).join(".")}: ${e.msg}`).join("; ");
    return `HTTP ${status}`;
  }

  async function api(method, path, body) {
    const headers = { Authorization: `Bearer ${state.key}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const res = await fetch(path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store",
    });
    let data = null;
    try { data = await res.json(); } catch (_) { /* no body */ }
    if (!res.ok) {
      const err = new Error(detail(data, res.status));
      err.status = res.status;
      throw err;
    }
    return data;
  }

  function say(text, ok) {
    const el = $("message");
    el.textContent = text || "";
    el.className = ok ? "muted" : "error";
  }

  // -- signing in ---------------------------------------------------------------------------------
  async function signIn(key) {
    state.key = key;
    let health;
    try {
      health = await api("GET", "/health");
    } catch (err) {
      state.key = null;
      sessionStorage.removeItem(STORE_KEY);
      $("login-error").textContent = err.status === 401 ? "This key is not known to the engine." : err.message;
      return;
    }
    sessionStorage.setItem(STORE_KEY, key);
    state.role = health.role;
    $("who").textContent = health.role;
    showLoad(health);
    $("login").hidden = true;
    $("main").hidden = false;
    $("logout").hidden = false;
    for (const el of document.querySelectorAll("[data-role]")) {
      if (can(el.dataset.role)) el.hidden = false;
      else el.remove(); // a viewer's page has no controls at all
    }
    await refresh();
    connect();
    state.timer = setInterval(refresh, REFRESH_MS);
  }

  function signOut(why) {
    sessionStorage.removeItem(STORE_KEY);
    if (state.ws) state.ws.close();
    if (why) sessionStorage.setItem("quotewise.why", why);
    location.reload();
  }

  // -- data ---------------------------------------------------------------------------------------
  function lightOf(m) {
    if (m.light) return m.light;
    const risk = m.risk || {};
    if (m.status === "failed") return "failed";
    if (m.halted || risk.halted) return "halted";
    if (m.status !== "running") return m.status;
    if (risk.blocked) return "paused";
    return "ok";
  }

  // The engine's event loop: how busy over the last 10 s, and whether quotes now follow the market late.
  // With worker processes (mm engine start --workers N): the busiest loop, and each worker's on hover.
  function showLoad(health) {
    const el = $("load");
    if (health.loop_busy === null || health.loop_busy === undefined) return;
    const pct = (share) => `${Math.round(share * 100)}%`;
    const workers = health.workers || [];
    el.hidden = false;
    el.textContent = `loop ${pct(health.loop_busy)} busy` + (workers.length ? ` (busiest of ${workers.length})` : "");
    el.className = health.loop_saturated ? "load saturated" : "load";
    const each = workers.map((w) => {
      if (!w.alive) return `worker ${w.index}: exited`;
      if (w.loop_busy === null || w.loop_busy === undefined) return `worker ${w.index}: ${w.makers} makers`;
      return `worker ${w.index}: ${w.makers} makers, ${pct(w.loop_busy)} busy, timers up to ` +
        `${w.loop_lag_ms.toFixed(1)} ms late`;
    });
    el.title =
      `event loop: ${pct(health.loop_busy)} busy, timers up to ` +
      `${health.loop_lag_ms.toFixed(1)} ms late (last 10 s)` +
      (health.loop_saturated
        ? "; saturated: quotes follow the market late, run fewer makers here or more --workers"
        : "") +
      each.map((line) => "\n" + line).join("");
  }

  async function refresh() {
    let rows;
    try {
      rows = await api("GET", "/maker/status");
      showLoad(await api("GET", "/health"));
    } catch (err) {
      if (err.status === 401) signOut("The key was refused.");
      return;
    }
    for (const r of rows) {
      const m = state.makers.get(r.id) || { id: r.id };
      // a running maker's live fields come from /stream; the table's read fills the rest
      const live = state.ws && state.ws.readyState === WebSocket.OPEN && m.light && r.status === "running";
      const { book, ...rest } = r;
      if (live) {
        for (const k of ["market", "venue", "strategy", "config", "data", "speed"]) m[k] = rest[k];
      } else {
        Object.assign(m, rest);
        m.light = undefined;
        m.light = lightOf(m);
      }
      state.makers.set(r.id, m);
    }
    await refreshBooks();
    draw();
  }

  // The books with their totals: GET /books names them, GET /books/{name} has each one's figures
  // (read with the makers table, every REFRESH_MS and after an action; a book gone meanwhile is left out).
  async function refreshBooks() {
    let names;
    try {
      names = await api("GET", "/books");
    } catch (_) {
      return;
    }
    const books = await Promise.all(names.map((b) =>
      api("GET", `/books/${encodeURIComponent(b.book)}`).catch(() => null)));
    state.books = books.filter((b) => b !== null);
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const ws = new WebSocket(`${scheme}${location.host}/stream`);
    state.ws = ws;
    ws.onopen = () => {
      ws.send(JSON.stringify({ key: state.key }));
      if (state.selected) ws.send(JSON.stringify({ maker: state.selected }));
    };
    ws.onmessage = (ev) => onMessage(JSON.parse(ev.data));
    ws.onclose = (ev) => {
      setLink(false);
      if (ev.code === 4401) { signOut("The key was refused by /stream."); return; }
      if (state.ws === ws) setTimeout(connect, 2000);
    };
  }

  function setLink(on) {
    const el = $("link");
    el.className = `link ${on ? "on" : "off"}`;
    el.textContent = on ? "live" : "offline";
  }

  function onMessage(msg) {
    if (msg.type === "hello") {
      setLink(true);
      $("who").textContent = `${msg.name} (${msg.role})`;
      return;
    }
    if (msg.type !== "maker") return;
    const known = state.makers.has(msg.id);
    const m = state.makers.get(msg.id) || { id: msg.id };
    const { type, ts, audit, risk_events: risk, ...fields } = msg;
    Object.assign(m, fields);
    state.makers.set(msg.id, m);
    if (m.status === "running" && m.position !== undefined) {
      const h = state.history.get(msg.id) || [];
      h.push({ t: ts, position: m.position, pnl: m.pnl });
      if (h.length > HISTORY) h.splice(0, h.length - HISTORY);
      state.history.set(msg.id, h);
    }
    for (const row of audit || []) addEvent(msg.id, "audit", row);
    for (const row of risk || []) addEvent(msg.id, "risk", row);
    if (!known || fields.status) scheduleRefreshSoon(); // a new maker, or one that stopped: its reason
    draw();
  }

  let refreshSoon = null;
  function scheduleRefreshSoon() {
    if (refreshSoon) return;
    refreshSoon = setTimeout(() => { refreshSoon = null; refresh(); }, 300);
  }

  function addEvent(id, kind, row) {
    const e = state.events.get(id) || { seen: new Set(), lines: [] };
    const mark = `${kind}:${row.id}`;
    if (e.seen.has(mark)) return;
    e.seen.add(mark);
    let text;
    if (kind === "risk") {
      const value = row.value === null ? "" : ` ${fmt(row.value)}`;
      const limit = row.limit === null ? "" : ` / ${fmt(row.limit)}`;
      text = `RISK ${row.rule} ${row.action}${value}${limit} ${row.detail}`;
    } else {
      text = `${row.actor} ${row.action}${summary(row.details)}`;
    }
    e.lines.push({ ts: row.ts, kind, text });
    e.lines.sort((a, b) => a.ts - b.ts);
    if (e.lines.length > EVENTS) e.lines.splice(0, e.lines.length - EVENTS);
    state.events.set(id, e);
  }

  // An audit row's details in one short line: the values set, nested changes flattened, what an
  // operator looks for first.
  const FIRST = ["market", "data", "strategy", "speed", "spread", "changes", "flatten", "position", "error"];
  function summary(details) {
    const parts = [];
    const walk = (obj, prefix) => {
      for (const [k, v] of Object.entries(obj || {})) {
        if (v === null || v === undefined || k === "credentials") continue;
        if (typeof v === "object" && !Array.isArray(v)) walk(v, `${prefix}${k}.`);
        else parts.push(`${prefix}${k}=${Array.isArray(v) ? v.join(",") : v}`);
      }
    };
    walk(details, "");
    const rank = (p) => Math.min(...p.slice(0, p.indexOf("=")).split(".").map((k) => {
      const i = FIRST.indexOf(k);
      return i < 0 ? FIRST.length : i;
    }));
    const text = parts.sort((a, b) => rank(a) - rank(b)).join(" ");
    return text ? ` ${text.length > 160 ? `${text.slice(0, 157)}...` : text}` : "";
  }

  // -- drawing ------------------------------------------------------------------------------------
  function fmt(x, digits) {
    if (x === null || x === undefined || Number.isNaN(x)) return "";
    if (digits !== undefined) return Number(x).toFixed(digits);
    return String(Math.round(x * 1e8) / 1e8);
  }

  function draw() {
    if (state.drawPending) return;
    state.drawPending = true;
    requestAnimationFrame(() => {
      state.drawPending = false;
      drawTable();
      drawBooks();
      drawDetail();
    });
  }

  function cell(tr, cls) {
    let td = tr.querySelector(`td.${cls}`);
    if (!td) {
      td = document.createElement("td");
      td.className = cls;
      tr.appendChild(td);
    }
    return td;
  }

  function setText(el, text) {
    if (el.textContent !== text) el.textContent = text;
  }

  function lightClass(light) {
    return `light ${LIGHTS[light] || "grey"}`;
  }

  function drawTable() {
    const body = $("makers").tBodies[0];
    const makers = [...state.makers.values()].sort(
      (a, b) => (a.status === "running" ? 0 : 1) - (b.status === "running" ? 0 : 1) || a.id.localeCompare(b.id),
    );
    $("no-makers").hidden = makers.length > 0;
    const rows = new Map([...body.rows].map((tr) => [tr.dataset.id, tr]));
    makers.forEach((m, i) => {
      let tr = rows.get(m.id);
      if (!tr) {
        tr = document.createElement("tr");
        tr.dataset.id = m.id;
        tr.addEventListener("click", () => select(m.id));
        for (const cls of ["risk", "id", "market", "status", "position num", "pnl num", "fills num"]) {
          const td = document.createElement("td");
          td.className = cls;
          tr.appendChild(td);
        }
        tr.cells[0].appendChild(document.createElement("span"));
      }
      if (body.rows[i] !== tr) body.insertBefore(tr, body.rows[i] || null);
      const light = lightOf(m);
      const dot = tr.cells[0].firstChild;
      dot.className = lightClass(light);
      dot.title = light;
      tr.cells[0].title = light;
      setText(tr.cells[1], m.id);
      setText(tr.cells[2], m.market || "");
      setText(tr.cells[3], m.status || "");
      setText(tr.cells[4], fmt(m.position));
      setText(tr.cells[5], fmt(m.pnl, 2));
      tr.cells[5].className = `pnl num ${m.pnl > 0 ? "pos" : m.pnl < 0 ? "neg" : ""}`;
      setText(tr.cells[6], fmt(m.fills));
      tr.classList.toggle("selected", m.id === state.selected);
    });
    for (const [id, tr] of rows) if (!state.makers.has(id)) tr.remove();
  }

  // A book's halted state from its makers' lines: halted when every running maker is, partly when
  // some are; a breach of its limits (the engine halts the book within 100 ms) shows as well.
  function bookState(b) {
    const running = b.makers.filter((m) => m.status === "running");
    const halted = running.filter((m) => m.halted);
    const beyond = (b.breaches || []).map((x) => `beyond ${x.limit} ${fmt(x.value, 2)} > ${fmt(x.threshold)}`);
    let text, light;
    if (halted.length && halted.length === running.length) [text, light] = ["halted", "halted"];
    else if (halted.length) [text, light] = [`${halted.length} of ${running.length} halted`, "halted"];
    else if (running.length) [text, light] = ["ok", beyond.length ? "halted" : "ok"];
    else [text, light] = ["not running", "stopped"];
    return { text: [text, ...beyond].join(" · "), light, breached: beyond.length > 0 };
  }

  function limitsText(limits) {
    if (!limits) return "none";
    const parts = ["max_loss", "max_gross", "max_net", "var_1m"]
      .filter((k) => limits[k] !== null && limits[k] !== undefined)
      .map((k) => `${k} ${fmt(limits[k])}`);
    if (limits.flatten) parts.push("flatten");
    if (limits.action === "pause" || limits.action === "reduce") parts.push(`${limits.action} ${limits.pause_for}`);
    return parts.join(" · ") || "none";
  }

  function drawBooks() {
    const body = $("books").tBodies[0];
    $("no-books").hidden = state.books.length > 0;
    const key = JSON.stringify(state.books);
    if (body.dataset.key === key) return;
    body.dataset.key = key;
    body.replaceChildren(...state.books.map((b) => {
      const tr = document.createElement("tr");
      tr.dataset.book = b.book;
      const td = (cls, text) => {
        const el = document.createElement("td");
        el.className = cls;
        if (text !== undefined) el.textContent = text;
        tr.appendChild(el);
        return el;
      };
      const st = bookState(b);
      const dot = document.createElement("span");
      dot.className = lightClass(st.light);
      dot.title = st.text;
      td("risk").appendChild(dot);
      td("book", b.book);
      const makers = td("makers");
      b.makers.forEach((m, i) => {
        if (i) makers.append(", ");
        const span = document.createElement("span");
        span.textContent = m.halted ? `${m.id} (halted)` : m.id;
        if (m.halted) span.className = "halted-maker";
        makers.appendChild(span);
      });
      const t = b.totals || {};
      const cur = b.currency ? ` ${b.currency}` : "";
      td(`pnl num ${t.pnl > 0 ? "pos" : t.pnl < 0 ? "neg" : ""}`, `${fmt(t.pnl, 2)}${cur}`);
      td("net num", fmt(t.net_exposure, 2));
      td("gross num", fmt(t.gross_exposure, 2));
      td("limits", limitsText(b.limits));
      td(`state${st.breached ? " breach" : ""}`, st.text);
      return tr;
    }));
  }

  function select(id) {
    state.selected = id;
    if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify({ maker: id }));
    api("GET", `/audit?maker_id=${encodeURIComponent(id)}`)
      .then((rows) => { for (const r of rows) addEvent(id, "audit", r); draw(); })
      .catch(() => {});
    draw();
  }

  function drawDetail() {
    const m = state.selected && state.makers.get(state.selected);
    $("detail").hidden = !m;
    if (!m) return;
    const light = lightOf(m);
    $("d-light").className = lightClass(light);
    $("d-light").title = light;
    setText($("d-id"), m.id);
    setText($("d-market"), m.market || "");
    setText($("d-state"), `${m.status || ""}${light !== m.status && light !== "ok" ? ` · ${light}` : ""}`);
    setText($("d-touch"), m.best_bid != null ? `${fmt(m.best_bid)} / ${fmt(m.best_ask)}` : "");
    setText($("d-position"), fmt(m.position));
    setText($("d-pnl"), `${fmt(m.pnl, 2)} ${m.currency || ""}`);
    const controls = $("maker-controls");
    if (controls) {
      const running = m.status === "running";
      $("stop").disabled = !running;
      $("halt").disabled = !running || !!m.halted;
      $("flatten").disabled = !running;
      $("resume").disabled = !running || !m.halted;
      $("configure").disabled = !running;
    }
    drawQuotes(m);
    drawDepth($("depth"), m);
    const h = state.history.get(m.id) || [];
    drawLine($("inventory"), h, "position", "#2f6fde");
    drawLine($("pnl"), h, "pnl", "#7a4fd6");
    drawEvents(m.id);
  }

  function drawQuotes(m) {
    const body = $("quotes").tBodies[0];
    const quotes = m.quotes || [];
    const key = JSON.stringify(quotes);
    if (body.dataset.key === key) return;
    body.dataset.key = key;
    body.replaceChildren(...quotes.map((q) => {
      const tr = document.createElement("tr");
      tr.className = q.side;
      for (const [text, cls] of [[q.side, ""], [fmt(q.price), "num"], [fmt(q.size), "num"], [q.status, ""]]) {
        const td = document.createElement("td");
        td.className = cls;
        td.textContent = text;
        tr.appendChild(td);
      }
      return tr;
    }));
  }

  function drawEvents(id) {
    const list = $("events");
    const e = state.events.get(id);
    const lines = e ? e.lines.slice().reverse() : [];
    const key = `${id}:${lines.length}:${lines.length ? lines[0].ts : ""}`;
    if (list.dataset.key === key) return;
    list.dataset.key = key;
    list.replaceChildren(...lines.map((l) => {
      const li = document.createElement("li");
      li.className = l.kind;
      li.textContent = `${clock(l.ts)} ${l.text}`;
      return li;
    }));
  }

  function clock(ns) {
    const d = new Date(ns / 1e6);
    return Number.isNaN(d.getTime()) ? "" : d.toISOString().slice(11, 23);
  }

  function canvas2d(c) {
    const ratio = window.devicePixelRatio || 1;
    const w = c.clientWidth || c.width;
    const h = c.clientHeight || c.height;
    if (c.width !== Math.round(w * ratio) || c.height !== Math.round(h * ratio)) {
      c.width = Math.round(w * ratio);
      c.height = Math.round(h * ratio);
    }
    const ctx = c.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, w, h);
    ctx.font = "11px system-ui, sans-serif";
    return { ctx, w, h };
  }

  function note(ctx, w, h, text) {
    ctx.fillStyle = "#6b7483";
    ctx.textAlign = "center";
    ctx.fillText(text, w / 2, h / 2);
  }

  // Cumulative depth of the top levels (bids left in green, asks right in red) with our quotes as
  // dashed lines at their prices.
  function drawDepth(c, m) {
    const { ctx, w, h } = canvas2d(c);
    const book = m.book;
    if (!book || (!book.bids.length && !book.asks.length)) {
      note(ctx, w, h, m.status === "running" ? "waiting for the book" : "not running");
      return;
    }
    const pad = { l: 8, r: 8, t: 14, b: 20 };
    const cum = (levels) => { let s = 0; return levels.map(([p, q]) => [p, (s += q)]); };
    const bids = cum(book.bids), asks = cum(book.asks);
    const quotes = m.quotes || [];
    const prices = [...bids, ...asks].map(([p]) => p).concat(quotes.map((q) => q.price));
    let lo = Math.min(...prices), hi = Math.max(...prices);
    const step = (hi - lo) / 40 || 1;
    lo -= step; hi += step;
    const top = Math.max(1e-12, ...bids.map(([, s]) => s), ...asks.map(([, s]) => s)) * 1.1;
    const x = (p) => pad.l + ((p - lo) / (hi - lo)) * (w - pad.l - pad.r);
    const y = (s) => h - pad.b - (s / top) * (h - pad.t - pad.b);
    const base = y(0);
    const side = (levels, colour, edge) => {
      if (!levels.length) return;
      ctx.beginPath();
      ctx.moveTo(x(levels[0][0]), base);
      levels.forEach(([p, s], i) => {
        ctx.lineTo(x(p), y(s));
        const next = i + 1 < levels.length ? x(levels[i + 1][0]) : edge;
        ctx.lineTo(next, y(s));
      });
      ctx.lineTo(edge, base);
      ctx.closePath();
      ctx.fillStyle = `${colour}33`;
      ctx.fill();
      ctx.strokeStyle = colour;
      ctx.lineWidth = 1.5;
      ctx.stroke();
    };
    side(bids, "#1f9d55", pad.l);
    side(asks, "#d64045", w - pad.r);
    if (bids.length && asks.length) {
      const mid = (bids[0][0] + asks[0][0]) / 2;
      ctx.strokeStyle = "#a0a7b3";
      ctx.setLineDash([2, 3]);
      ctx.beginPath(); ctx.moveTo(x(mid), pad.t); ctx.lineTo(x(mid), base); ctx.stroke();
    }
    ctx.setLineDash([5, 3]);
    ctx.lineWidth = 2;
    for (const q of quotes) {
      const bid = q.side === "bid";
      const colour = bid ? "#0b6b35" : "#9c1d22";
      ctx.strokeStyle = colour;
      ctx.beginPath(); ctx.moveTo(x(q.price), pad.t); ctx.lineTo(x(q.price), base); ctx.stroke();
      ctx.fillStyle = colour;
      ctx.textAlign = bid ? "right" : "left"; // bids' labels to the left of their line, asks' right
      ctx.fillText(`our ${q.side} ${fmt(q.size)} @ ${fmt(q.price)}`, x(q.price) + (bid ? -3 : 3), pad.t - 3);
    }
    ctx.setLineDash([]);
    ctx.fillStyle = "#6b7483";
    ctx.textAlign = "left";
    ctx.fillText(fmt(lo + step), pad.l, h - 5);
    ctx.textAlign = "right";
    ctx.fillText(fmt(hi - step), w - pad.r, h - 5);
    ctx.fillText(`depth ${fmt(top / 1.1)}`, w - pad.r, pad.t + 10);
  }

  function drawLine(c, points, field, colour) {
    const { ctx, w, h } = canvas2d(c);
    const pts = points.filter((p) => typeof p[field] === "number");
    if (pts.length < 2) { note(ctx, w, h, "collecting..."); return; }
    const pad = { l: 8, r: 8, t: 12, b: 12 };
    const t0 = pts[0].t, t1 = pts[pts.length - 1].t;
    let lo = Math.min(0, ...pts.map((p) => p[field])), hi = Math.max(0, ...pts.map((p) => p[field]));
    if (hi === lo) { hi += 1; lo -= 1; }
    const x = (t) => pad.l + ((t - t0) / (t1 - t0 || 1)) * (w - pad.l - pad.r);
    const y = (v) => h - pad.b - ((v - lo) / (hi - lo)) * (h - pad.t - pad.b);
    ctx.strokeStyle = "#c9ced6";
    ctx.lineWidth = 1;
    ctx.beginPath(); ctx.moveTo(pad.l, y(0)); ctx.lineTo(w - pad.r, y(0)); ctx.stroke();
    ctx.strokeStyle = colour;
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    pts.forEach((p, i) => (i ? ctx.lineTo(x(p.t), y(p[field])) : ctx.moveTo(x(p.t), y(p[field]))));
    ctx.stroke();
    ctx.fillStyle = "#6b7483";
    ctx.textAlign = "left";
    ctx.fillText(fmt(hi, field === "pnl" ? 2 : undefined), pad.l + 2, pad.t);
    ctx.fillText(fmt(lo, field === "pnl" ? 2 : undefined), pad.l + 2, h - 2);
    ctx.textAlign = "right";
    ctx.fillText(`${Math.round(t1 - t0)} s`, w - pad.r, h - 2);
  }

  // -- controls -----------------------------------------------------------------------------------
  async function act(what, method, path, body) {
    try {
      await api(method, path, body);
      say(`${what}: done`, true);
    } catch (err) {
      say(`${what}: ${err.message}`);
    }
    refresh();
  }

  function wire() {
    $("login-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      $("login-error").textContent = "";
      signIn($("key").value.trim());
    });
    $("logout").addEventListener("click", () => signOut());
    const start = $("start-form");
    if (start) {
      start.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        const f = new FormData(start);
        const body = { data: f.get("data"), speed: Number(f.get("speed")) };
        for (const k of ["strategy", "spread"]) if (f.get(k)) body[k] = f.get(k);
        try {
          const { id } = await api("POST", "/maker/start", body);
          say(`started ${id}`, true);
          await refresh();
          select(id);
        } catch (err) {
          say(`start: ${err.message}`);
        }
      });
    }
    if ($("maker-controls")) {
      const id = () => encodeURIComponent(state.selected);
      $("stop").addEventListener("click", () =>
        act(`stop ${state.selected}`, "POST", "/maker/stop", { id: state.selected }));
      $("halt").addEventListener("click", () => act(`halt ${state.selected}`, "POST", `/maker/${id()}/halt`));
      $("flatten").addEventListener("click", () =>
        act(`halt and flatten ${state.selected}`, "POST", `/maker/${id()}/halt?flatten=true`));
      $("resume").addEventListener("click", () =>
        act(`resume ${state.selected}`, "POST", `/maker/${id()}/resume`));
      $("config-form").addEventListener("submit", (ev) => {
        ev.preventDefault();
        const spread = new FormData(ev.target).get("spread");
        if (spread) act(`spread of ${state.selected}`, "PATCH", `/maker/${id()}/config`, { spread });
      });
    }
    window.addEventListener("resize", draw);
  }

  document.addEventListener("DOMContentLoaded", () => {
    wire(); // before the role is known: a viewer's controls are removed with their listeners
    const why = sessionStorage.getItem("quotewise.why");
    sessionStorage.removeItem("quotewise.why");
    if (why) $("login-error").textContent = why;
    const key = sessionStorage.getItem(STORE_KEY);
    if (key) signIn(key);
  });
})();
