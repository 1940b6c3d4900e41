// naq dashboard: polls the JSON API and renders the current view. No dependencies.
"use strict";
(function () {
  const POLL_MS = 1500;
  const body = document.body;
  const view = body.dataset.view;
  const arg = body.dataset.arg;
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const content = document.getElementById("content");
  const statusLine = document.getElementById("status");
  let lastJson = null;

  // h("td", {class: "num"}, "text", node...): elements built with textContent only (no HTML).
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }
  const enc = encodeURIComponent;
  const when = (iso) => (iso ? new Date(iso).toLocaleString() : "—");
  const badge = (s) => h("span", { class: "badge " + s }, s);
  const jobLink = (id) => h("a", { href: "/jobs/" + enc(id) }, h("code", {}, id));
  const queueLink = (q) => h("a", { href: "/queues/" + enc(q) }, q);
  const json = (v) => JSON.stringify(v);

  function table(headers, rows, emptyText) {
    if (!rows.length) return h("p", { class: "empty" }, emptyText || "None.");
    return h("table", {},
      h("thead", {}, h("tr", {}, headers.map((x) =>
        h("th", { class: x.endsWith("#") ? "num" : null }, x.replace(/#$/, ""))))),
      h("tbody", {}, rows));
  }
  const num = (v) => h("td", { class: "num" }, v);

  async function post(url) {
    const r = await fetch(url, { method: "POST", headers: { "X-CSRF-Token": csrf },
      credentials: "same-origin" });
    const data = await r.json().catch(() => ({ error: r.statusText }));
    if (!r.ok) throw new Error(data.error || r.statusText);
    return data;
  }
  function actionButton(label, url, opts) {
    opts = opts || {};
    return h("button", {
      class: opts.danger ? "danger" : null, "data-action": label.toLowerCase(),
      onclick: async (ev) => {
        ev.target.disabled = true;
        if (opts.confirm && !window.confirm(opts.confirm)) { ev.target.disabled = false; return; }
        try {
          const data = await post(url);
          statusLine.textContent = label + ": done" + (data.job_id ? " (job " + data.job_id + ")" : "");
          statusLine.className = "status";
        } catch (e) {
          statusLine.textContent = label + " failed: " + e.message;
          statusLine.className = "status error";
        }
        lastJson = null;
        refresh();
      },
    }, label);
  }

  // -- sections --------------------------------------------------------------------
  function queuesTable(queues) {
    return table(["Queue", "Pending#", "In progress#", "Jobs/s (1 min)#", "Workers#"],
      queues.map((q) => h("tr", { "data-queue": q.name }, h("td", {}, queueLink(q.name)),
        num(q.pending), num(q.in_progress), num(q.throughput), num(q.workers.length))),
      "No queues yet: start a worker.");
  }
  function workersTable(workers) {
    return table(["Worker", "Queues", "Backend", "Running#", "Processed#", "Failed#", "State", "Last heartbeat"],
      workers.map((w) => h("tr", { "data-worker": w.id }, h("td", {}, h("code", {}, w.id)),
        h("td", {}, w.queues.map((q, i) => [i ? ", " : "", queueLink(q)])), h("td", {}, w.backend),
        num(w.running + "/" + w.concurrency), num(w.processed), num(w.failed),
        h("td", {}, badge(w.state)), h("td", {}, when(w.last_heartbeat)))),
      "No live workers.");
  }
  function jobsTable(jobs) {
    return table(["Job", "Queue", "Function", "Status", "Attempts#", "Progress", "Enqueued"],
      jobs.map((j) => h("tr", { "data-job": j.id, "data-status": j.status },
        h("td", {}, jobLink(j.id)), h("td", {}, queueLink(j.queue)), h("td", {}, h("code", {}, j.function)),
        h("td", {}, badge(j.status)), num(j.attempts),
        h("td", {}, j.progress === null ? "" : h("progress", { max: 1, value: j.progress })),
        h("td", {}, when(j.enqueued_at)))),
      "No job seen since the dashboard started.");
  }
  function deadLettersTable(letters) {
    return table(["Job", "Queue", "Function", "Reason", "Attempts#", "When", ""],
      letters.map((d) => h("tr", { "data-dead-letter": d.job_id }, h("td", {}, jobLink(d.job_id)),
        h("td", {}, queueLink(d.queue)), h("td", {}, h("code", {}, d.function || "?")),
        h("td", {}, d.reason), num(d.attempts === null ? "?" : d.attempts), h("td", {}, when(d.time)),
        h("td", {}, actionButton("Requeue", "/api/dead-letters/" + enc(d.job_id) + "/requeue"), " ",
          actionButton("Delete", "/api/dead-letters/" + enc(d.job_id) + "/delete",
            { danger: true, confirm: "Delete the dead letter of job " + d.job_id + "?" })))),
      "No dead letters.");
  }
  function schedulesTable(schedules) {
    return table(["Schedule", "Queue", "Function", "Trigger", "Status", "Runs#", "Next run", "Last job", ""],
      schedules.map((s) => {
        const base = "/api/schedules/" + enc(s.id) + "/";
        const trigger = s.cron ? "cron " + s.cron : s.interval ? "every " + s.interval + " s" : "at " + when(s.at);
        const final = s.status === "completed" || s.status === "canceled";
        return h("tr", { "data-schedule": s.id }, h("td", {}, h("code", {}, s.id)), h("td", {}, queueLink(s.queue)),
          h("td", {}, h("code", {}, s.function)), h("td", {}, trigger), h("td", {}, badge(s.status)),
          num(s.runs), h("td", {}, when(s.next_run)), h("td", {}, s.last_job_id ? jobLink(s.last_job_id) : "—"),
          h("td", {}, final ? "" : [
            s.status === "paused" ? actionButton("Resume", base + "resume") : actionButton("Pause", base + "pause"),
            " ", actionButton("Cancel", base + "cancel", { danger: true, confirm: "Cancel schedule " + s.id + "?" })]));
      }), "No schedules.");
  }
  function jobDetail(j) {
    const rows = [
      ["Status", badge(j.status)], ["Queue", queueLink(j.queue)], ["Function", h("code", {}, j.function)],
      ["Args", h("code", {}, typeof j.args === "string" ? j.args : json(j.args))],
      ["Kwargs", h("code", {}, typeof j.kwargs === "string" ? j.kwargs : json(j.kwargs))],
      ["Serializer", j.serializer], ["Attempts", j.attempts + " of " + j.max_attempts],
      ["Worker", j.worker_id || "—"], ["Enqueued", when(j.enqueued_at)], ["Started", when(j.started_at)],
      ["Ended", when(j.ended_at)],
      ["Progress", j.progress === null ? "—" : h("span", {}, h("progress", { max: 1, value: j.progress }), " ", Math.round(j.progress * 100) + "%")],
      ["Depends on", j.depends_on.length ? j.depends_on.map((d, i) => [i ? ", " : "", jobLink(d)]) : "—"],
      ["Meta", h("code", {}, json(j.meta))],
    ];
    if (j.status === "finished") rows.push(["Result", h("code", { id: "result" }, typeof j.result === "string" && j.result === "(pickled)" ? j.result : json(j.result))]);
    const parts = [h("dl", {}, rows.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]))];
    if (["queued", "deferred", "scheduled", "started"].includes(j.status))
      parts.push(h("p", {}, actionButton("Cancel", "/api/jobs/" + enc(j.id) + "/cancel", { danger: true, confirm: "Cancel job " + j.id + "?" })));
    if (j.error && j.status === "canceled") parts.push(h("h2", {}, "Canceled"),
      h("p", { id: "canceled" }, j.error.type === "JobCanceled" ? j.error.message : [h("b", {}, j.error.type), ": ", j.error.message]));
    else if (j.error) parts.push(h("h2", {}, "Error"),
      h("p", {}, h("b", {}, j.error.type), ": ", j.error.message), h("pre", { id: "traceback" }, j.error.traceback));
    parts.push(h("h2", {}, "History"), table(["Status", "At"], j.history.map((s) =>
      h("tr", {}, h("td", {}, badge(s.status)), h("td", {}, when(s.at))))));
    return parts;
  }

  // -- views -----------------------------------------------------------------------
  const views = {
    overview: ["/api/overview", (d) => [
      h("div", { class: "cards" },
        h("div", { class: "card" }, h("b", { id: "total-pending" }, d.queues.reduce((a, q) => a + q.pending, 0)), "pending"),
        h("div", { class: "card" }, h("b", { id: "total-running" }, d.queues.reduce((a, q) => a + q.in_progress, 0)), "in progress"),
        h("div", { class: "card" }, h("b", {}, d.queues.reduce((a, q) => a + q.throughput, 0).toFixed(2)), "jobs/s (1 min)"),
        h("div", { class: "card" }, h("b", {}, d.workers.length), "workers"),
        h("div", { class: "card" }, h("b", { id: "dead-letter-count" }, d.dead_letter_count), "dead letters")),
      h("h2", {}, "Queues"), queuesTable(d.queues),
      h("h2", {}, "Recent jobs"), h("div", { id: "recent" }, jobsTable(d.recent)),
      h("h2", {}, "Recent dead letters"), h("div", { id: "dead-letters" }, deadLettersTable(d.dead_letters)),
      h("h2", {}, "Workers"), workersTable(d.workers)]],
    queue: ["/api/queues/" + enc(arg), (d) => [queuesTable([d.queue]),
      h("h2", {}, "Recent jobs"), jobsTable(d.recent), h("h2", {}, "Dead letters"), deadLettersTable(d.dead_letters)]],
    job: ["/api/jobs/" + enc(arg), jobDetail],
    workers: ["/api/workers", workersTable],
    schedules: ["/api/schedules", schedulesTable],
    "dead-letters": ["/api/dead-letters", deadLettersTable],
  };

  let timer = null;
  async function refresh() {
    clearTimeout(timer);
    const [url, render] = views[view];
    try {
      const r = await fetch(url, { credentials: "same-origin", cache: "no-store" });
      const data = await r.json();
      if (!r.ok) throw new Error(data.error || r.statusText);
      const text = JSON.stringify(data);
      if (text !== lastJson) {  // re-render only on change: no flicker, no lost clicks
        lastJson = text;
        content.replaceChildren(...[render(data)].flat());
      }
      if (!statusLine.className.includes("error") || statusLine.dataset.poll) {
        statusLine.textContent = "Updated " + new Date().toLocaleTimeString();
        statusLine.className = "status";
        delete statusLine.dataset.poll;
      }
    } catch (e) {
      statusLine.textContent = "Could not load " + url + ": " + e.message;
      statusLine.className = "status error";
      statusLine.dataset.poll = "1";
    }
    timer = setTimeout(refresh, POLL_MS);
  }
  refresh();
})();
