// tqserver admin dashboard: no build step, no framework. Live through a
// streamed /api/stream (Server-Sent Events read with fetch, so a Bearer token
// can be sent), falling back to polling /api/status and /api/events.
const $ = (sel) => document.querySelector(sel);
const TOKEN_KEY = "tqserver-admin-token";
const POLL_MS = 2000;
const MAX_EVENTS = 300;

const state = {
  status: null,
  series: {},
  lastId: 0,
  /** worker → reason → count, from the timeline */
  reasons: new Map(),
  rows: new Map(),
  /** key → { at, seconds } of the last status: CPU % is the difference. */
  cpu: new Map(),
  /** Worker whose output is shown, if any. */
  output: null,
};

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) if (c) node.append(c);
  return node;
}

function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

async function api(path, init = {}) {
  const headers = new Headers(init.headers ?? {});
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.set("authorization", `Bearer ${token}`);
  const res = await fetch(path, { ...init, headers, cache: "no-store" });
  if (res.status === 401 && !init.retried) {
    const entered = prompt(
      "This admin API needs its token (server.admin.token):",
    );
    if (entered) {
      sessionStorage.setItem(TOKEN_KEY, entered.trim());
      return api(path, { ...init, retried: true });
    }
  }
  return res;
}

function duration(ms) {
  if (ms < 0 || !Number.isFinite(ms)) return "–";
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${m % 60} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

function ago(iso) {
  if (!iso) return "–";
  return `${duration(Date.now() - Date.parse(iso))} ago`;
}

function clock(iso) {
  return new Date(iso).toLocaleTimeString([], { hour12: false });
}

function bytes(n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i === 0 || n >= 100 ? 0 : 1)} ${units[i]}`;
}

function count(n) {
  return (n ?? 0).toLocaleString("en-US");
}

/** Rates and latencies: whole numbers as they are and from 10 up, one decimal below. */
function amount(n) {
  return n >= 10 || Number.isInteger(n)
    ? Math.round(n).toLocaleString("en-US")
    : n.toFixed(1);
}

/** CPU use since the last status, in % of one core; "–" until there are two. */
function cpuPercent(key, seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const now = performance.now();
  const last = state.cpu.get(key);
  if (!last || seconds < last.seconds) {
    state.cpu.set(key, { at: now, seconds, pct: null });
    return "–";
  }
  if (now - last.at < 900) {
    return last.pct === null ? "–" : `${last.pct}%`;
  }
  const pct = Math.round(
    ((seconds - last.seconds) / ((now - last.at) / 1000)) * 100,
  );
  state.cpu.set(key, { at: now, seconds, pct });
  return `${pct}%`;
}

function sparkline(values, title) {
  const w = 100, h = 28;
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("class", "spark");
  svg.setAttribute("width", String(w));
  svg.setAttribute("height", String(h));
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", title);
  const max = Math.max(1e-9, ...values);
  // The top of the graph is the largest value of the minute (labelled "max").
  const top = document.createElementNS(svg.namespaceURI, "line");
  top.setAttribute("class", "scale");
  top.setAttribute("x1", "0");
  top.setAttribute("x2", String(w));
  top.setAttribute("y1", "2");
  top.setAttribute("y2", "2");
  const step = values.length > 1 ? w / (values.length - 1) : w;
  const pts = values.map((v, i) =>
    `${(i * step).toFixed(1)},${(h - 2 - (v / max) * (h - 4)).toFixed(1)}`
  );
  const area = document.createElementNS(svg.namespaceURI, "polygon");
  area.setAttribute("class", "area");
  area.setAttribute("points", `0,${h} ${pts.join(" ")} ${w},${h}`);
  const line = document.createElementNS(svg.namespaceURI, "polyline");
  line.setAttribute("points", pts.join(" "));
  const t = document.createElementNS(svg.namespaceURI, "title");
  t.textContent = title;
  svg.append(t, top, area, line);
  return svg;
}

function showResult(message, ok) {
  const box = $("#result");
  box.hidden = false;
  box.className = `result ${ok ? "ok" : "bad"}`;
  box.textContent = message;
}

async function post(path, button) {
  button.disabled = true;
  try {
    const res = await api(path, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    let body = {};
    try {
      body = await res.json();
    } catch {
      // Not JSON: say the status below.
    }
    showResult(
      body.message ?? body.error ?? `Failed with status ${res.status}.`,
      res.ok && body.ok !== false,
    );
  } catch (err) {
    showResult(`The server did not answer: ${err.message}.`, false);
  } finally {
    button.disabled = false;
  }
}

function rowFor(name) {
  let row = state.rows.get(name);
  if (row) return row;
  const cell = (label, cls = "") =>
    el("td", { "data-label": label, class: cls });
  row = {
    tr: el("tr", { "data-worker": name }),
    name: cell("Worker", "first"),
    state: cell("State"),
    instances: cell("Instances"),
    uptime: cell("Uptime", "nowrap"),
    binary: cell("Binary built", "nowrap"),
    requests: cell("Requests", "num"),
    inFlight: cell("In flight", "num"),
    answers: cell("Answers", "nowrap"),
    memory: cell("Memory", "num nowrap"),
    cpu: cell("CPU", "num"),
    restarts: cell("Restarts"),
    rate: cell("Req/s"),
    latency: cell("Latency"),
    action: cell(""),
  };
  row.title = el("div", { class: "name" });
  row.route = el("span", { class: "route" });
  row.error = el("div", { class: "error" });
  row.name.append(row.title, row.route, row.error);
  row.pill = el("span", { class: "pill" });
  row.state.append(row.pill);
  const answers = el("div", { class: "answers-box" });
  for (const cls of ["c2xx", "c4xx", "c5xx"]) {
    row[cls] = el("span", { class: `answers ${cls}` });
    answers.append(row[cls]);
  }
  row.answers.append(answers);
  const button = el("button", {
    type: "button",
    class: "restart",
    text: "Restart",
    title: `Replace ${name} with fresh instances (reason: manual)`,
  });
  const cancel = el("button", {
    type: "button",
    class: "cancel",
    text: "Cancel",
  });
  cancel.hidden = true;
  let armed;
  const disarm = () => {
    clearTimeout(armed);
    armed = undefined;
    button.textContent = "Restart";
    button.classList.remove("confirm");
    cancel.hidden = true;
  };
  // Asks first: the first click arms the button, a second one restarts.
  button.addEventListener("click", () => {
    if (armed === undefined) {
      button.textContent = "Confirm";
      button.classList.add("confirm");
      cancel.hidden = false;
      armed = setTimeout(disarm, 8000);
      showResult(
        `Restart ${name}? Its instances are replaced by new ones (the old ones serve until then). Click "Confirm" within 8 s.`,
        true,
      );
      $("#result").className = "result";
      return;
    }
    disarm();
    post(`/api/workers/${encodeURIComponent(name)}/restart`, button);
  });
  cancel.addEventListener("click", disarm);
  const output = el("button", {
    type: "button",
    class: "output",
    text: "Output",
    title: `The last lines ${name}'s instances printed`,
  });
  output.addEventListener("click", () => showOutput(name));
  row.action.append(
    el("div", { class: "row-actions" }, output, button, cancel),
  );
  row.tr.append(
    row.name,
    row.state,
    row.instances,
    row.uptime,
    row.binary,
    row.requests,
    row.inFlight,
    row.answers,
    row.memory,
    row.cpu,
    row.restarts,
    row.rate,
    row.latency,
    row.action,
  );
  state.rows.set(name, row);
  return row;
}

function renderSpark(cell, values, now, max, title) {
  cell.replaceChildren(
    el(
      "div",
      { class: "spark-box" },
      sparkline(values, title),
      el(
        "span",
        { class: "spark-label" },
        el("span", { class: "now", text: max ? `now ${now}` : now }),
        max ? el("span", { class: "max", text: ` · max ${max}` }) : null,
      ),
    ),
  );
}

const KIND_LABELS = {
  "replace-failed": "start failed",
  "build-error": "build error",
  "restart-requested": "requested",
};

/** "2 manual, 1 crashed" when the timeline saw every restart, else the count and the last reason. */
function restartsText(w) {
  if (!w.restarts) return "0";
  const reasons = state.reasons.get(w.name);
  const seen = reasons ? [...reasons.values()].reduce((a, b) => a + b, 0) : 0;
  if (reasons && seen === w.restarts) {
    return [...reasons].map(([r, n]) => `${n} ${r}`).join(", ");
  }
  const last = w.last_restart_reason ? ` (last: ${w.last_restart_reason})` : "";
  return `${w.restarts}${last}`;
}

function render() {
  const s = state.status;
  if (!s) return;
  const up = duration(Date.now() - Date.parse(s.started_at));
  setText(
    $("#summary"),
    `${s.mode} · v${s.version} · pid ${s.pid} · port ${s.port} · up ${up} · ${s.workers.length} worker${
      s.workers.length === 1 ? "" : "s"
    }`,
  );
  const r = s.responses ?? {};
  setText(
    $("#server-usage"),
    `server: ${bytes(s.rss_bytes)} · CPU ${cpuPercent("", s.cpu_seconds)} · ${
      count(r["2xx"])
    } 2xx · ${count(r["4xx"])} 4xx · ${count(r["5xx"])} 5xx`,
  );
  const tbody = $("#workers tbody");
  const names = new Set(s.workers.map((w) => w.name));
  for (const [name, row] of state.rows) {
    if (!names.has(name)) {
      row.tr.remove();
      state.rows.delete(name);
    }
  }
  if (s.workers.length === 0) {
    tbody.replaceChildren(
      el(
        "tr",
        { class: "empty" },
        el("td", { colspan: "14", text: "No workers." }),
      ),
    );
    return;
  }
  tbody.querySelector("tr.empty")?.remove();
  s.workers.forEach((w, i) => {
    const row = rowFor(w.name);
    if (tbody.children[i] !== row.tr) {
      tbody.insertBefore(row.tr, tbody.children[i] ?? null);
    }
    setText(row.title, w.name);
    setText(row.route, w.route);
    setText(row.error, w.last_error ?? "");
    row.error.hidden = !w.last_error;
    setText(row.pill, w.status);
    row.pill.className = `pill ${w.status}`;
    // Two lines per instance (who it is, then its load): serving ones first,
    // then starting and draining ones.
    const inst = w.instances.map((x) => [
      `pid ${x.pid} :${x.port}${
        x.status === "healthy" ? "" : ` · ${x.status}`
      }`,
      `${x.in_flight} in flight · ${x.requests} req · up ${
        duration(Date.now() - Date.parse(x.started_at))
      }`,
    ]);
    const key = JSON.stringify(inst);
    if (row.instances.dataset.v !== key) {
      row.instances.dataset.v = key;
      row.instances.replaceChildren(
        ...(inst.length ? inst : [["none", ""]]).map(([who, load]) => {
          const item = el("span", { class: "inst mono", text: who });
          if (load) {
            item.append(el("span", { class: "inst-detail", text: load }));
          }
          return item;
        }),
      );
    }
    setText(
      row.uptime,
      w.started_at ? duration(Date.now() - Date.parse(w.started_at)) : "–",
    );
    setText(row.binary, ago(w.binary_mtime));
    row.binary.title = `${w.binary_path}\n${w.binary_mtime ?? "no binary"}`;
    setText(row.requests, w.requests.toLocaleString());
    setText(row.inFlight, String(w.in_flight));
    const answers = w.responses ?? {};
    for (const cls of ["2xx", "4xx", "5xx"]) {
      const n = answers[cls] ?? 0;
      setText(row[`c${cls}`], `${count(n)} ${cls}`);
      row[`c${cls}`].classList.toggle("some", n > 0);
    }
    row.answers.title = `3xx: ${count(answers["3xx"])}`;
    setText(row.memory, bytes(w.rss_bytes));
    row.memory.title = (w.instances ?? []).map((i) =>
      `pid ${i.pid}: ${bytes(i.rss_bytes)}`
    ).join("\n");
    setText(row.cpu, cpuPercent(w.name, w.cpu_seconds));
    row.cpu.title = w.cpu_seconds === null || w.cpu_seconds === undefined
      ? ""
      : `${w.cpu_seconds} s of CPU since its instances started`;
    setText(row.restarts, restartsText(w));
    const series = state.series[w.name] ??
      { rate: new Array(60).fill(0), latency_ms: new Array(60).fill(0) };
    // The current second is not over: "now" is the last complete one.
    const done = series.rate.slice(0, -1);
    const rateNow = done.length ? done[done.length - 1] : 0;
    const seen = series.latency_ms.slice(0, -1).filter((v) => v > 0);
    const lat = seen.length ? seen[seen.length - 1] : 0;
    renderSpark(
      row.rate,
      series.rate,
      `${amount(rateNow)}/s`,
      `${amount(Math.max(0, ...series.rate))}/s`,
      `${w.name}: requests per second, last 60 s (top of the graph: the largest second)`,
    );
    renderSpark(
      row.latency,
      series.latency_ms,
      seen.length ? `${amount(lat)} ms` : "no requests",
      seen.length ? `${amount(Math.max(0, ...series.latency_ms))} ms` : null,
      `${w.name}: mean latency per second, last 60 s (top of the graph: the slowest second)`,
    );
  });
}

async function showOutput(name) {
  state.output = name;
  const panel = $("#output");
  panel.hidden = false;
  setText($("#output-title"), `Last output of ${name}`);
  const box = $("#output-lines");
  box.textContent = "Loading…";
  try {
    const res = await api(`/api/workers/${encodeURIComponent(name)}/output`);
    const body = await res.json();
    if (!res.ok) throw new Error(body.error ?? `status ${res.status}`);
    if (state.output !== name) return;
    const parts = body.instances.map((i) =>
      `── pid ${i.pid} :${i.port} ──\n${
        i.lines.join("\n") || "(nothing printed yet)"
      }`
    );
    box.textContent = parts.join("\n\n") || "No instance runs.";
  } catch (err) {
    box.textContent = `Could not read the output: ${err.message}`;
  }
  panel.scrollIntoView({ block: "nearest" });
}

function addEvent(e, fresh) {
  if (e.id <= state.lastId) return;
  state.lastId = e.id;
  if (e.type === "replace" && e.worker && e.fields?.reason) {
    const m = state.reasons.get(e.worker) ?? new Map();
    m.set(e.fields.reason, (m.get(e.fields.reason) ?? 0) + 1);
    state.reasons.set(e.worker, m);
  }
  const list = $("#events");
  // A crash loop repeats one sentence with new ports and pids: count it instead.
  const signature = `${e.type}|${e.worker ?? ""}|${
    e.message.replace(/\d+/g, "#")
  }`;
  const top = list.firstElementChild;
  if (top && top.dataset.signature === signature) {
    const count = Number(top.dataset.count ?? "1") + 1;
    top.dataset.count = String(count);
    top.dataset.id = String(e.id);
    const time = top.querySelector("time");
    time.dateTime = e.time;
    time.title = e.time;
    time.textContent = clock(e.time);
    setText(top.querySelector(".msg .text"), e.message);
    setText(top.querySelector(".repeat"), `×${count}`);
    return;
  }
  const li = el(
    "li",
    {
      "data-type": e.type,
      "data-id": String(e.id),
      "data-signature": signature,
      class: fresh ? "fresh" : "",
    },
    el("time", { datetime: e.time, title: e.time, text: clock(e.time) }),
    el("span", {
      class: `pill kind ${e.type}`,
      text: KIND_LABELS[e.type] ?? e.type,
      title: e.type,
    }),
    el(
      "span",
      { class: "msg" },
      el("span", { class: "text", text: e.message }),
      el("span", { class: "repeat muted", title: "times in a row" }),
    ),
  );
  list.prepend(li);
  while (list.children.length > MAX_EVENTS) list.lastElementChild.remove();
  $("#no-events").hidden = true;
}

function setLive(mode) {
  const live = $("#live");
  live.className = `live ${
    mode === "live" ? "on" : mode === "polling" ? "poll" : ""
  }`;
  setText(live, mode);
}

async function refresh() {
  const [status, events, series] = await Promise.all([
    api("/api/status"),
    api(`/api/events?since=${state.lastId}`),
    api("/api/series"),
  ]);
  if (!status.ok || !events.ok || !series.ok) {
    throw new Error(`status ${status.status}`);
  }
  state.status = await status.json();
  const flash = state.lastId > 0;
  for (const e of (await events.json()).events) addEvent(e, flash);
  state.series = (await series.json()).series;
  render();
}

function handleFrame(block) {
  let event = "message";
  let data = "";
  for (const line of block.split("\n")) {
    if (line.startsWith("event:")) event = line.slice(6).trim();
    else if (line.startsWith("data:")) data += line.slice(5).trimStart();
  }
  if (!data) return;
  const body = JSON.parse(data);
  if (event === "status") {
    state.status = body.status;
    state.series = body.series;
    render();
  } else if (event === "event") {
    addEvent(body, true);
  }
}

async function stream() {
  const res = await api(`/api/stream?since=${state.lastId}`);
  if (!res.ok || !res.body) throw new Error(`status ${res.status}`);
  setLive("live");
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value.replace(/\r\n/g, "\n");
    let at;
    while ((at = buf.indexOf("\n\n")) >= 0) {
      handleFrame(buf.slice(0, at));
      buf = buf.slice(at + 2);
    }
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function run() {
  const forcePoll = new URLSearchParams(location.search).has("poll");
  for (;;) {
    try {
      await refresh();
    } catch {
      setLive("offline");
      await sleep(POLL_MS);
      continue;
    }
    if (!forcePoll) {
      try {
        await stream();
      } catch {
        // Fall through to polling; the stream is retried after a few polls.
      }
    }
    setLive("polling");
    for (let i = 0; i < 5; i++) {
      await sleep(POLL_MS);
      try {
        await refresh();
        setLive("polling");
      } catch {
        setLive("offline");
      }
    }
  }
}

$("#output-refresh").addEventListener("click", () => {
  if (state.output) showOutput(state.output);
});
$("#output-close").addEventListener("click", () => {
  state.output = null;
  $("#output").hidden = true;
});
$("#reload").addEventListener(
  "click",
  (ev) => post("/api/reload", ev.currentTarget),
);
// Uptimes and "ago" move even when nothing else does.
setInterval(render, 1000);
run();
