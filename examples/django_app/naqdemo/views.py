"""Two views: enqueue a job (waiting for it if asked), and look a job up (waiting a little).

Both are plain blocking Django views: ``naq_sync`` runs naq on a background loop thread
shared by every thread of the worker process, with one connection per process (a forked
gunicorn worker makes its own on first use).

    POST /jobs  a=1 b=2          202 {"id": ..., "status": "queued"}
    POST /jobs?wait=5  a=1 b=2   200 {"id": ..., "status": "finished", "result": 3}
                                 (or 202 with the status if it takes longer than 5 s)
    GET  /jobs/<id>?wait=5       200 with the outcome, 202 while it runs, 404 if unknown
    POST /sums  a=1 b=2          202 {"id": <row>, "job": <job id>}: a row, and a job that
                                 fills in its result, enqueued when the transaction commits
                                 (``async=1``: the async ORM job; ``rollback=1``: the
                                 transaction rolls back, so no job: 409)
    GET  /sums/<row>             200 {"id", "a", "b", "result"} (result null until computed)
"""

from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET, require_POST

import naq_sync
from naq.contrib.django import enqueue_on_commit

from .models import Sum
from .tasks import acompute_sum, add, compute_sum


def _naq_errors(view: Callable[..., JsonResponse]) -> Callable[..., JsonResponse]:
    """Answer 503 while NATS is unreachable and 400 for a bad parameter, instead of 500."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: object, **kwargs: object) -> JsonResponse:
        try:
            return view(request, *args, **kwargs)
        except naq_sync.NaqConnectionError as exc:
            return JsonResponse({"error": str(exc)}, status=503)
        except (naq_sync.ConfigurationError, KeyError, ValueError) as exc:
            return JsonResponse({"error": str(exc)}, status=400)

    return wrapped


def _wait(request: HttpRequest) -> float:
    return min(max(float(request.GET.get("wait", 0)), 0.0), settings.NAQ_MAX_WAIT)


def _accepted(job_id: str, status: naq_sync.JobStatus) -> JsonResponse:
    """202: the job is queued or running; its outcome will be at /jobs/<id>."""
    response = JsonResponse({"id": job_id, "status": status.value}, status=202)
    response["Location"] = f"/jobs/{job_id}"
    return response


def _outcome(job: naq_sync.Job, wait: float) -> JsonResponse:
    """200 with the job's outcome if it has one within ``wait`` seconds, else 202."""
    try:
        value = job.result(timeout=wait)
    except naq_sync.ResultTimeout:
        return _accepted(job.id, job.get_status())
    except naq_sync.JobFailed as exc:
        error = f"{exc.exc_type}: {exc.message}"
        return JsonResponse({"id": job.id, "status": "failed", "error": error})
    return JsonResponse({"id": job.id, "status": "finished", "result": value})


@require_POST
@_naq_errors
def enqueue_add(request: HttpRequest) -> JsonResponse:
    """Enqueue ``add(a, b)``; with ``?wait=`` also wait for its result."""
    a, b = int(request.POST["a"]), int(request.POST["b"])
    wait = _wait(request)
    job = naq_sync.enqueue(add, a, b, queue=settings.NAQ_QUEUE)
    if wait == 0:
        return _accepted(job.id, naq_sync.JobStatus.QUEUED)
    return _outcome(job, wait)


@require_GET
@_naq_errors
def job_detail(request: HttpRequest, job_id: str) -> JsonResponse:
    """A job's outcome, waiting up to ``?wait=`` seconds for it."""
    try:
        job = naq_sync.fetch_job(job_id)
    except naq_sync.JobNotFound:
        return JsonResponse({"error": f"no job {job_id}"}, status=404)
    return _outcome(job, _wait(request))


@require_POST
@_naq_errors
def create_sum(request: HttpRequest) -> JsonResponse:
    """Save a row and enqueue the job that computes it, in one transaction."""
    a, b = int(request.POST["a"]), int(request.POST["b"])
    job = acompute_sum if request.POST.get("async") == "1" else compute_sum
    with transaction.atomic():
        row = Sum.objects.create(a=a, b=b)
        job_id = enqueue_on_commit(job, row.pk, queue=settings.NAQ_QUEUE)
        if request.POST.get("rollback") == "1":
            transaction.set_rollback(True)  # the row and the job are both gone
            return JsonResponse({"job": job_id, "rolled_back": True}, status=409)
    return JsonResponse({"id": row.pk, "job": job_id}, status=202)


@require_GET
def sum_detail(request: HttpRequest, sum_id: int) -> JsonResponse:
    try:
        row = Sum.objects.get(pk=sum_id)
    except Sum.DoesNotExist:
        return JsonResponse({"error": f"no sum {sum_id}"}, status=404)
    return JsonResponse({"id": row.pk, "a": row.a, "b": row.b, "result": row.result})
