"use strict";
const rows = document.getElementById("workers");
const summary = document.getElementById("summary");
const report = document.getElementById("report");

function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text ?? "";
  if (cls) td.className = cls;
  return td;
}

async function refresh() {
  try {
    const res = await fetch("/api/status", { cache: "no-store" });
    const s = await res.json();
    summary.textContent =
      `${s.mode} · pid ${s.pid} · v${s.version} · port ${s.port} · since ${
        new Date(s.started_at).toLocaleString()
      }`;
    rows.replaceChildren(...s.workers.map((w) => {
      const tr = document.createElement("tr");
      const status = cell("");
      const badge = document.createElement("span");
      badge.className = `status ${w.status}`;
      badge.textContent = w.status;
      status.append(badge);
      tr.append(
        cell(w.name),
        cell(w.route),
        status,
        cell(w.pid),
        cell(w.port),
        cell(w.started_at ? new Date(w.started_at).toLocaleTimeString() : ""),
        cell(w.requests),
        cell(w.in_flight),
        cell(w.restarts),
        cell(w.last_restart_reason),
        cell(w.last_error, "error"),
      );
      return tr;
    }));
  } catch (err) {
    summary.textContent = `cannot reach the server: ${err}`;
  }
}

document.getElementById("reload").addEventListener("click", async () => {
  const res = await fetch("/api/reload", { method: "POST" });
  report.textContent = JSON.stringify(await res.json(), null, 2);
  refresh();
});

refresh();
setInterval(refresh, 2000);
