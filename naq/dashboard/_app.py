"""The dashboard's ASGI app: HTML pages (rendered once, then kept live by static/app.js)
and the JSON API under ``/api/`` they poll and post to."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import anyio
import attrs
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp

from .. import __version__
from .._admin import Admin, limits_of
from .._client import Client
from .._errors import ConfigurationError, JobNotFound, NaqError, ScheduleNotFound
from .._metrics import cluster_metrics
from .._record import JobStatus
from .._settings import ConnectOptions
from .._views import (
    dead_letter_view,
    history_view,
    job_view,
    limit_view,
    queue_view,
    schedule_view,
    worker_view,
)
from ._jobs import JobIndex
from ._security import BasicAuth, csrf_problem

__all__ = ["create_app"]

_HERE = Path(__file__).parent
_DEAD_LETTERS_ON_OVERVIEW = 20
_RECENT_ON_OVERVIEW = 20
_MAX_HISTORY_MINUTES = 24 * 60  # what the stats stream keeps
_STATUSES = tuple(status.value for status in JobStatus)
_PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"

Handler = Callable[[Request], Awaitable[Response]]


class _State:
    """What the routes share: the client (set at startup), the job index, the CSRF token."""

    def __init__(self) -> None:
        self.client: Client | None = None
        self.jobs = JobIndex()
        self.csrf_token = secrets.token_urlsafe(32)

    @property
    def connected(self) -> Client:
        if self.client is None:
            raise HTTPException(503, "the dashboard is not connected yet")
        return self.client


def _whole_number(request: Request, name: str, default: int) -> int:
    """A whole-number query parameter, ``default`` when absent; 400 when it is not one."""
    try:
        return int(request.query_params.get(name) or default)
    except ValueError:
        raise HTTPException(400, f"{name} must be a whole number") from None


def create_app(
    client_or_options: Client | ConnectOptions | str | None = None,
    auth: tuple[str, str] | None = None,
) -> ASGIApp:
    """The dashboard as an ASGI app.

    Give it a connected ``Client`` (used as is), or ``ConnectOptions``/a URL/None (the app
    connects at startup and closes at shutdown). ``auth=(user, password)`` requires HTTP
    Basic auth on every request.
    """
    state = _State()
    templates = Jinja2Templates(directory=str(_HERE / "templates"))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            if isinstance(client_or_options, Client):
                state.client = client_or_options
            else:
                client = (
                    Client(connect_options=client_or_options)
                    if isinstance(client_or_options, ConnectOptions)
                    else Client(client_or_options)
                )
                state.client = await stack.enter_async_context(client)
            tg = await stack.enter_async_context(anyio.create_task_group())
            await tg.start(state.jobs.follow, state.client)
            try:
                yield
            finally:
                tg.cancel_scope.cancel()
                state.client = None

    def page(view: str, title: str) -> Handler:
        async def render(request: Request) -> Response:
            arg = request.path_params.get("arg", "")
            return templates.TemplateResponse(
                request,
                "page.html",
                {
                    "view": view,
                    "title": title,
                    "arg": arg,
                    "csrf_token": state.csrf_token,
                    "version": __version__,
                },
            )

        return render

    def moved(to: str) -> Handler:
        async def redirect(request: Request) -> Response:
            return RedirectResponse(to, status_code=308)

        return redirect

    async def search(request: Request) -> Response:
        """A job id goes to its page; anything else lists the jobs whose function has it."""
        params = request.query_params
        text = (params.get("q") or params.get("id") or "").strip()
        if not text:
            return RedirectResponse("/", status_code=303)
        try:
            await state.connected.fetch_job(text)
        except NaqError:  # not a job id (JobNotFound, or not even shaped like one)
            return RedirectResponse(f"/jobs?{urlencode({'function': text})}", status_code=303)
        return RedirectResponse(request.url_for("job_page", arg=text), status_code=303)

    # -- JSON API ---------------------------------------------------------------------

    async def api_overview(request: Request) -> Response:
        client = state.connected
        admin = Admin(client)
        queues = await admin.queues()
        workers = await admin.workers()
        letters = await client.dead_letters()
        return JSONResponse(
            {
                "queues": [queue_view(q) for q in queues],
                "workers": [worker_view(w) for w in workers],
                "limits": [limit_view(limit) for limit in limits_of(workers)],
                "dead_letters": [dead_letter_view(d) for d in reversed(letters)][
                    :_DEAD_LETTERS_ON_OVERVIEW
                ],
                "dead_letter_count": len(letters),
                "recent": state.jobs.page(per_page=_RECENT_ON_OVERVIEW).jobs,
            }
        )

    async def api_queues(request: Request) -> Response:
        queues = await Admin(state.connected).queues()
        return JSONResponse([queue_view(q) for q in queues])

    async def api_queue(request: Request) -> Response:
        name = request.path_params["name"]
        client = state.connected
        try:
            found = await Admin(client).queues([name])
        except NaqError as exc:
            raise HTTPException(400, str(exc)) from None
        info = (
            queue_view(found[0])
            if found
            else {"name": name, "pending": 0, "in_progress": 0, "throughput": 0, "workers": []}
        )
        letters = await client.dead_letters(queue=name)
        return JSONResponse(
            {"queue": info, "dead_letters": [dead_letter_view(d) for d in reversed(letters)]}
        )

    async def api_jobs(request: Request) -> Response:
        """A page of stored jobs: ?queue=&status=&function=&page= (all optional)."""
        params = request.query_params
        status = params.get("status") or None
        if status is not None and status not in _STATUSES:
            raise HTTPException(400, f"unknown status {status!r}: one of {', '.join(_STATUSES)}")
        number = _whole_number(request, "page", 1)
        found = state.jobs.page(
            queue=params.get("queue") or None,
            status=status,
            function=params.get("function") or None,
            page=number,
        )
        return JSONResponse(attrs.asdict(found))

    async def api_history(request: Request) -> Response:
        """Jobs finished and failed per minute: ?queue= (else all), ?minutes= (1-1440)."""
        params = request.query_params
        minutes = _whole_number(request, "minutes", 60)
        if not 1 <= minutes <= _MAX_HISTORY_MINUTES:
            raise HTTPException(400, f"minutes must be 1 to {_MAX_HISTORY_MINUTES}")
        buckets = await Admin(state.connected).throughput_history(
            minutes, queue=params.get("queue") or None
        )
        return JSONResponse([history_view(b) for b in buckets])

    async def api_workers(request: Request) -> Response:
        workers = await Admin(state.connected).workers()
        return JSONResponse([worker_view(w) for w in workers])

    async def api_job(request: Request) -> Response:
        job_id = request.path_params["job_id"]
        try:
            job = await state.connected.fetch_job(job_id)
        except JobNotFound:
            raise HTTPException(404, f"no job {job_id!r}") from None
        except NaqError as exc:
            raise HTTPException(400, str(exc)) from None
        assert job.record is not None
        return JSONResponse(job_view(job.record))

    async def api_dead_letters(request: Request) -> Response:
        queue = request.query_params.get("queue") or None
        try:
            letters = await state.connected.dead_letters(queue=queue)
        except NaqError as exc:
            raise HTTPException(400, str(exc)) from None
        return JSONResponse([dead_letter_view(d) for d in reversed(letters)])

    async def api_schedules(request: Request) -> Response:
        schedules = await state.connected.list_schedules()
        return JSONResponse([schedule_view(s) for s in schedules])

    async def metrics(request: Request) -> Response:
        """Prometheus metrics of every queue and live worker (needs the metrics extra)."""
        client = state.connected
        admin = Admin(client)
        queues = await admin.queues()
        workers = await admin.workers()
        letters = await client.dead_letters()
        try:
            body = cluster_metrics(queues, workers, letters)
        except ConfigurationError as exc:  # prometheus-client is not installed
            raise HTTPException(501, str(exc)) from None
        return Response(body, media_type=_PROMETHEUS_TEXT)

    # -- actions (POST + CSRF token) --------------------------------------------------

    def action(run: Callable[[Client, str], Awaitable[dict[str, Any]]], key: str) -> Handler:
        async def handle(request: Request) -> Response:
            problem = csrf_problem(request, state.csrf_token)
            if problem is not None:
                return problem
            try:
                body = await run(state.connected, request.path_params[key])
            except (JobNotFound, ScheduleNotFound) as exc:
                raise HTTPException(404, str(exc)) from None
            except NaqError as exc:
                raise HTTPException(400, str(exc)) from None
            return JSONResponse({"ok": True, **body})

        return handle

    async def requeue(client: Client, job_id: str) -> dict[str, Any]:
        job = await client.requeue_dead_letter(job_id)
        return {"job_id": job.id}

    async def delete(client: Client, job_id: str) -> dict[str, Any]:
        if not await client.delete_dead_letter(job_id):
            raise HTTPException(404, f"no dead letter for job {job_id!r}")
        return {"job_id": job_id}

    async def cancel_job(client: Client, job_id: str) -> dict[str, Any]:
        return {"job_id": job_id, "canceled": await client.cancel(job_id)}

    def schedule_action(name: str) -> Callable[[Client, str], Awaitable[dict[str, Any]]]:
        async def run(client: Client, schedule_id: str) -> dict[str, Any]:
            schedule = await getattr(client, f"{name}_schedule")(schedule_id)
            return {"schedule": schedule_view(schedule)}

        return run

    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": exc.detail}, status_code=exc.status_code)
        return Response(exc.detail, status_code=exc.status_code, media_type="text/plain")

    routes = [
        Route("/", page("overview", "Overview"), name="overview_page"),
        Route("/queues/{arg}", page("queue", "Queue"), name="queue_page"),
        Route("/jobs", page("jobs", "Jobs"), name="jobs_page"),
        Route("/jobs/{arg}", page("job", "Job"), name="job_page"),
        Route("/workers", page("workers", "Workers"), name="workers_page"),
        Route("/schedules", page("schedules", "Schedules"), name="schedules_page"),
        Route("/dead-letters", page("dead-letters", "Dead letters"), name="dead_letters_page"),
        Route("/failed", moved("/dead-letters")),  # the old name of that page
        Route("/search", search),
        Route("/metrics", metrics),
        Route("/api/overview", api_overview),
        Route("/api/queues", api_queues),
        Route("/api/queues/{name}", api_queue),
        Route("/api/workers", api_workers),
        Route("/api/jobs", api_jobs),
        Route("/api/history", api_history),
        Route("/api/jobs/{job_id}", api_job),
        Route("/api/jobs/{job_id}/cancel", action(cancel_job, "job_id"), methods=["POST"]),
        *(
            route
            for prefix in ("/api/dead-letters", "/api/failed")  # /api/failed: the old name
            for route in (
                Route(prefix, api_dead_letters),
                Route(f"{prefix}/{{job_id}}/requeue", action(requeue, "job_id"), methods=["POST"]),
                Route(f"{prefix}/{{job_id}}/delete", action(delete, "job_id"), methods=["POST"]),
            )
        ),
        Route("/api/schedules", api_schedules),
        *(
            Route(
                f"/api/schedules/{{schedule_id}}/{name}",
                action(schedule_action(name), "schedule_id"),
                methods=["POST"],
            )
            for name in ("pause", "resume", "cancel")
        ),
        Mount("/static", StaticFiles(directory=str(_HERE / "static")), name="static"),
    ]
    app: ASGIApp = Starlette(
        routes=routes, lifespan=lifespan, exception_handlers={HTTPException: api_error}
    )
    if auth is not None:
        app = BasicAuth(app, *auth)
    return app
