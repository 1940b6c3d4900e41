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
  function jobsTable(jobs, emptyText) {
    return table(["Job", "Queue", "Function", "Status", "Attempts#", "Progress", "Enqueued"],
      jobs.map((j) => h("tr", { "data-job": j.id, "data-status": j.status },
        h("td", {}, jobLink(j.id)), h("td", {}, queueLink(j.queue)), h("td", {}, h("code", {}, j.function)),
        h("td", {}, badge(j.status)), num(j.attempts),
        h("td", {}, j.progress === null ? "" : h("progress", { max: 1, value: j.progress })),
        h("td", {}, when(j.enqueued_at)))),
      emptyText || "No jobs yet.");
  }
  function limitsTable(limits) {
    return table(["Limit key", "Running#", "Waiting#", "Workers#"],
      limits.map((l) => h("tr", { "data-limit": l.key }, h("td", {}, h("code", {}, l.key)),
        num(l.running), num(l.waiting), num(l.workers.length))),
      "No job runs or waits on a limit.");
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
    if (j.priority) rows.push(["Priority", h("span", { id: "priority" }, String(j.priority))]);
    if (j.unique) rows.push(["Unique", h("span", { id: "unique" }, j.unique, " by ", h("code", {}, j.unique_key))]);
    if (j.limit_key) rows.push(["Limits", h("span", { id: "limits" },
      [j.max_running !== null ? "at most " + j.max_running + " running" : null,
       j.rate_limit ? "at most " + j.rate_limit + " starts" : null].filter(Boolean).join(", "),
      " per ", h("code", {}, j.limit_key))]);
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

  // -- history chart and job lists ------------------------------------------------------
  const SVG = "http://www.w3.org/2000/svg";
  function svg(tag, attrs, ...children) {
    const el = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
    for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return el;
  }
  // Runs ended per minute, stacked: finished (green) under failed (red); the last hour.
  function historyChart(buckets) {
    const W = 1000, H = 170, PAD = 28, n = Math.max(buckets.length, 1), bw = (W - PAD) / n;
    const top = Math.max(1, ...buckets.map((b) => b.finished + b.failed));
    const y = (v) => ((H - 20) * v) / top;
    const finished = buckets.reduce((a, b) => a + b.finished, 0);
    const failed = buckets.reduce((a, b) => a + b.failed, 0);
    const bars = buckets.map((b, i) => {
      const x = PAD + i * bw, hf = y(b.finished), hx = y(b.failed);
      const label = new Date(b.start).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) +
        ": " + b.finished + " finished, " + b.failed + " failed";
      return svg("g", { class: "bar" }, svg("title", {}, label),
        svg("rect", { class: "finished", x: x, y: H - 20 - hf, width: Math.max(bw - 1, 1), height: hf }),
        svg("rect", { class: "failed", x: x, y: H - 20 - hf - hx, width: Math.max(bw - 1, 1), height: hx }));
    });
    const chart = svg("svg", { id: "chart", viewBox: "0 0 " + W + " " + H, role: "img",
      "data-finished": finished, "data-failed": failed,
      "aria-label": "Runs per minute, last " + buckets.length + " minutes: " + finished + " finished, " + failed + " failed" },
      svg("line", { class: "axis", x1: PAD, y1: H - 20, x2: W, y2: H - 20 }),
      svg("text", { x: 0, y: 12 }, top), svg("text", { x: 0, y: H - 22 }, 0),
      svg("text", { x: PAD, y: H - 4 }, "−" + buckets.length + " min"),
      svg("text", { x: W, y: H - 4, "text-anchor": "end" }, "now"), ...bars);
    return h("figure", { class: "chart" }, chart,
      h("figcaption", {}, "Runs per minute: ", h("span", { class: "key finished" }, finished + " finished"), ", ",
        h("span", { class: "key failed" }, failed + " failed"), " in the last hour"));
  }
  const STATES = ["queued", "scheduled", "deferred", "started", "finished", "failed", "canceled"];
  // The filters of a job list live in the page's query string, so a list can be linked to.
  const params = new URLSearchParams(location.search);
  function withParams(changes) {
    const p = new URLSearchParams(location.search);
    for (const [k, v] of Object.entries(changes)) { if (v) p.set(k, v); else p.delete(k); }
    if (!("page" in changes)) p.delete("page");
    const q = p.toString();
    return location.pathname + (q ? "?" + q : "");
  }
  function jobsQuery(queue) {
    const p = new URLSearchParams();
    if (queue) p.set("queue", queue);
    for (const k of ["status", "function", "page"]) if (params.get(k)) p.set(k, params.get(k));
    return "/api/jobs?" + p.toString();
  }
  function jobList(d) {
    const current = params.get("status") || "";
    const all = Object.values(d.counts).reduce((a, b) => a + b, 0);
    const tab = (state, count) => h("a", { href: withParams({ status: state }), "data-state": state || "all",
      class: state === current ? "tab active" : "tab" }, (state || "all") + " (" + count + ")");
    const filter = h("form", { class: "filter", method: "get", action: location.pathname },
      current ? h("input", { type: "hidden", name: "status", value: current }) : null,
      h("input", { name: "function", placeholder: "Function contains", "aria-label": "Function contains",
        value: params.get("function") || "" }), h("button", { type: "submit" }, "Filter"));
    const pager = d.pages > 1 ? h("p", { class: "pager" },
      d.page > 1 ? h("a", { href: withParams({ page: String(d.page - 1) }), rel: "prev" }, "← newer") : null,
      " page " + d.page + " of " + d.pages + " ",
      d.page < d.pages ? h("a", { href: withParams({ page: String(d.page + 1) }), rel: "next" }, "older →") : null) : null;
    return h("div", { id: "jobs" }, h("nav", { class: "tabs" }, tab("", all), STATES.map((s) => tab(s, d.counts[s] || 0))),
      filter, jobsTable(d.jobs, "No jobs " + (current ? current : "stored") + (params.get("function") ? " matching that function." : ".")),
      pager, h("p", { class: "muted" }, d.total + " job" + (d.total === 1 ? "" : "s")));
  }

  // -- views: [API URLs, render(...their JSON)] ------------------------------------------
  const views = {
    overview: [["/api/overview", "/api/history"], (d, hist) => [
      h("div", { class: "cards" },
        h("div", { class: "card" }, h("b", { id: "total-pending" }, d.queues.reduce((a, q) => a + q.pending, 0)), "pending"),
        h("div", { class: "card" }, h("b", { id: "total-running" }, d.queues.reduce((a, q) => a + q.in_progress, 0)), "in progress"),
        h("div", { class: "card" }, h("b", {}, d.queues.reduce((a, q) => a + q.throughput, 0).toFixed(2)), "jobs/s (1 min)"),
        h("div", { class: "card" }, h("b", {}, d.workers.length), "workers"),
        h("div", { class: "card" }, h("b", { id: "dead-letter-count" }, d.dead_letter_count), "dead letters")),
      historyChart(hist),
      h("h2", {}, "Queues"), queuesTable(d.queues),
      h("h2", {}, "Recent jobs"), h("div", { id: "recent" }, jobsTable(d.recent)),
      h("h2", {}, "Recent dead letters"), h("div", { id: "dead-letters" }, deadLettersTable(d.dead_letters)),
      h("h2", {}, "Workers"), workersTable(d.workers),
      h("h2", {}, "Limits"), h("div", { id: "limits" }, limitsTable(d.limits))]],
    queue: [["/api/queues/" + enc(arg), jobsQuery(arg), "/api/history?queue=" + enc(arg)], (d, jobs, hist) => [
      queuesTable([d.queue]), historyChart(hist), h("h2", {}, "Jobs"), jobList(jobs),
      h("h2", {}, "Dead letters"), deadLettersTable(d.dead_letters)]],
    jobs: [[jobsQuery(params.get("queue"))], jobList],
    job: [["/api/jobs/" + enc(arg)], jobDetail],
    workers: [["/api/workers"], workersTable],
    schedules: [["/api/schedules"], schedulesTable],
    "dead-letters": [["/api/dead-letters"], deadLettersTable],
  };
  // History changes once per sample (workers write every 10 s): fetched at most that often.
  const SLOW = { "/api/history": 10000 };
  const fetched = {};
  async function load(url) {
    const slow = SLOW[url.split("?")[0]];
    const last = fetched[url];
    if (slow && last && Date.now() - last.at < slow) return last.data;
    const r = await fetch(url, { credentials: "same-origin", cache: "no-store" });
    const data = await r.json();
    if (!r.ok) throw new Error(data.error || r.statusText);
    fetched[url] = { at: Date.now(), data: data };
    return data;
  }

  let timer = null;
  async function refresh() {
    clearTimeout(timer);
    const [urls, render] = views[view];
    let url = urls[0];
    try {
      const data = [];
      for (url of urls) data.push(await load(url));
      const text = JSON.stringify(data);
      const active = document.activeElement;
      const typing = active && active.tagName === "INPUT" && content.contains(active);
      if (text !== lastJson && !typing) {  // re-render only on change: no flicker, no lost clicks
        lastJson = text;
        content.replaceChildren(...[render(...data)].flat());
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
