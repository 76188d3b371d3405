"""The Lambda Runtime API that worker processes poll, as awslambdaric expects it.

::

    GET  /2018-06-01/runtime/invocation/next            -> the next event, with its headers
    POST /2018-06-01/runtime/invocation/{id}/response   -> the handler's result
    POST /2018-06-01/runtime/invocation/{id}/error      -> the handler's error object
    POST /2018-06-01/runtime/init/error                 -> the handler could not be loaded

Every worker connects to its own port of this one application; the port the request arrived
on names the worker.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from asynccfn.local._records import Outcome
from asynccfn.local._workers import Worker

__all__ = ["MAX_PAYLOAD", "runtime_app"]

MAX_PAYLOAD = 6 * 1024 * 1024
"""Lambda's limit for a synchronous request or response payload."""

_PREFIX = "/2018-06-01/runtime"
_WORKER_LOOKUP: web.AppKey[Callable[[int], Worker | None]] = web.AppKey("worker_lookup")


def runtime_app(worker_on_port: Callable[[int], Worker | None]) -> web.Application:
    """The Runtime API application; ``worker_on_port`` maps a listening port to its worker."""
    app = web.Application(client_max_size=MAX_PAYLOAD + 1024)
    app[_WORKER_LOOKUP] = worker_on_port
    app.router.add_get(f"{_PREFIX}/invocation/next", _next)
    app.router.add_post(f"{_PREFIX}/invocation/{{request_id}}/response", _response)
    app.router.add_post(f"{_PREFIX}/invocation/{{request_id}}/error", _error)
    app.router.add_post(f"{_PREFIX}/init/error", _init_error)
    return app


def _worker(request: web.Request) -> Worker:
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    worker = request.app[_WORKER_LOOKUP](sockname[1]) if sockname else None
    if worker is None:
        raise web.HTTPForbidden(text='{"errorType":"UnknownWorker"}')
    return worker


async def _next(request: web.Request) -> web.StreamResponse:
    worker = _worker(request)
    assignment = await worker.next_assignment()
    if assignment is None:
        raise web.HTTPGone(text='{"errorType":"WorkerStopped"}')
    deadline = worker.deliver(assignment)
    headers = {
        "Lambda-Runtime-Aws-Request-Id": assignment.request_id,
        "Lambda-Runtime-Deadline-Ms": str(int(deadline * 1000)),
        "Lambda-Runtime-Invoked-Function-Arn": assignment.function_arn,
        "Lambda-Runtime-Trace-Id": assignment.trace_header,
    }
    if assignment.client_context:
        headers["Lambda-Runtime-Client-Context"] = assignment.client_context
    return web.Response(body=assignment.payload, headers=headers, content_type="application/json")


async def _response(request: web.Request) -> web.StreamResponse:
    return await _finish(request, Outcome.SUCCESS)


async def _error(request: web.Request) -> web.StreamResponse:
    return await _finish(request, Outcome.ERROR)


async def _finish(request: web.Request, outcome: Outcome) -> web.StreamResponse:
    worker = _worker(request)
    body = await request.read()
    if not worker.finish(request.match_info["request_id"], outcome, body):
        raise web.HTTPBadRequest(
            text='{"errorMessage":"Invalid request ID","errorType":"InvalidRequestID"}',
            content_type="application/json",
        )
    return web.json_response({"status": "OK"}, status=202)


async def _init_error(request: web.Request) -> web.StreamResponse:
    worker = _worker(request)
    worker.fail_init(await request.read())
    return web.json_response({"status": "OK"}, status=202)
