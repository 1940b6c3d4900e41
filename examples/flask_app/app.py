"""A Flask app that enqueues naq jobs: ``gunicorn app:app`` (run from examples/flask_app).

    POST /jobs  a=1 b=2          202 {"id": ..., "status": "queued"}
    POST /jobs?wait=5  a=1 b=2   200 {"id": ..., "status": "finished", "result": 3}
                                 (or 202 with the status if it takes longer than 5 s)
    GET  /jobs/<id>?wait=5       200 with the outcome, 202 while it runs, 404 if unknown
    POST /greetings?wait=5  name=Ada   like /jobs, for a job that reads ``current_app``

``naq_sync`` runs naq on a background loop thread shared by every thread of the process,
with one connection per process (a forked gunicorn worker makes its own on first use).
The ``Naq`` extension takes naq's settings from the app's config (``NAQ_NATS_URL``,
``NAQ_QUEUE``...), where the environment does not set them. Run the worker with
``naq worker --flask app:app`` so its jobs run in the app's context.
"""

from flask import Flask, Response, jsonify, request
from tasks import add, greet

import naq_sync
from naq.contrib.flask import Naq

MAX_WAIT = 25.0
"""Longest a request waits for a job, in seconds: below gunicorn's 30 s worker timeout."""

app = Flask(__name__)
app.config.update(
    NAQ_NATS_URL="nats://127.0.0.1:4222",  # the NAQ_NATS_URL variable wins when set
    NAQ_QUEUE="default",
    GREETING="Hello",
)
naq = Naq(app)


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
    job = naq.enqueue(add, a, b)
    if wait == 0:
        return _accepted(job.id, naq_sync.JobStatus.QUEUED)
    return _outcome(job, wait)


@app.post("/greetings")
def enqueue_greeting() -> Response | tuple[Response, int, dict[str, str]]:
    """Enqueue ``greet(name)``, a job that uses the app's config through ``current_app``."""
    job = naq.enqueue(greet, request.form["name"])
    return _outcome(job, _wait())


@app.get("/jobs/<job_id>")
def job_detail(job_id: str) -> Response | tuple[Response, int] | tuple[Response, int, dict]:
    """A job's outcome, waiting up to ``?wait=`` seconds for it."""
    try:
        job = naq.fetch_job(job_id)
    except naq_sync.JobNotFound:
        return jsonify(error=f"no job {job_id}"), 404
    return _outcome(job, _wait())
