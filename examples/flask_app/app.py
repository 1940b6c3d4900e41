"""A Flask app that enqueues naq jobs: ``gunicorn app:app`` (run from examples/flask_app).

    POST /jobs  a=1 b=2          202 {"id": ..., "status": "queued"}
    POST /jobs?wait=5  a=1 b=2   200 {"id": ..., "status": "finished", "result": 3}
                                 (or 202 with the status if it takes longer than 5 s)
    GET  /jobs/<id>?wait=5       200 with the outcome, 202 while it runs, 404 if unknown

``naq_sync`` runs naq on a background loop thread shared by every thread of the process,
with one connection per process (a forked gunicorn worker makes its own on first use).
naq reads ``NAQ_NATS_URL``; ``NAQ_QUEUE`` picks the queue.
"""

import os

from flask import Flask, Response, jsonify, request
from tasks import add

import naq_sync

QUEUE = os.environ.get("NAQ_QUEUE", "default")
MAX_WAIT = 25.0
"""Longest a request waits for a job, in seconds: below gunicorn's 30 s worker timeout."""

app = Flask(__name__)


@app.errorhandler(naq_sync.NaqConnectionError)
def nats_unavailable(exc: naq_sync.NaqConnectionError) -> tuple[Response, int]:
    return jsonify(error=str(exc)), 503


@app.errorhandler(naq_sync.ConfigurationError)
@app.errorhandler(ValueError)
def bad_request(exc: Exception) -> tuple[Response, int]:
    return jsonify(error=str(exc)), 400


def _wait() -> float:
    return min(max(float(request.args.get("wait", 0)), 0.0), MAX_WAIT)


def _accepted(job_id: str, status: naq_sync.JobStatus) -> tuple[Response, int, dict[str, str]]:
    """202: the job is queued or running; its outcome will be at /jobs/<id>."""
    return jsonify(id=job_id, status=status.value), 202, {"Location": f"/jobs/{job_id}"}


def _outcome(job: naq_sync.Job, wait: float) -> Response | tuple[Response, int, dict[str, str]]:
    """200 with the job's outcome if it has one within ``wait`` seconds, else 202."""
    try:
        value = job.result(timeout=wait)
    except naq_sync.ResultTimeout:
        return _accepted(job.id, job.get_status())
    except naq_sync.JobFailed as exc:
        return jsonify(id=job.id, status="failed", error=f"{exc.exc_type}: {exc.message}")
    return jsonify(id=job.id, status="finished", result=value)


@app.post("/jobs")
def enqueue_add() -> Response | tuple[Response, int, dict[str, str]]:
    """Enqueue ``add(a, b)``; with ``?wait=`` also wait for its result."""
    a, b = int(request.form["a"]), int(request.form["b"])
    wait = _wait()
    job = naq_sync.enqueue(add, a, b, queue=QUEUE)
    if wait == 0:
        return _accepted(job.id, naq_sync.JobStatus.QUEUED)
    return _outcome(job, wait)


@app.get("/jobs/<job_id>")
def job_detail(job_id: str) -> Response | tuple[Response, int] | tuple[Response, int, dict]:
    """A job's outcome, waiting up to ``?wait=`` seconds for it."""
    try:
        job = naq_sync.fetch_job(job_id)
    except naq_sync.JobNotFound:
        return jsonify(error=f"no job {job_id}"), 404
    return _outcome(job, _wait())
