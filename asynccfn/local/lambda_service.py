"""A small local AWS Lambda service: the Invoke API, the Runtime API and real worker processes.

Handlers run under the real runtime client (``python -m awslambdaric module.handler``) in
child processes with real deadlines, and the service emulates what bites in Lambda:

- a worker still busy at its deadline is killed (``timeout``) and one that dies is
  ``crashed``; the next invocation then starts a fresh worker, as Lambda starts a new
  execution environment;
- a failed ``Event`` invocation is retried ``max_retries`` times after ``retry_delays`` with
  the same request id; an event older than ``max_event_age`` is dropped; a discarded event
  goes to the ``on_failure`` function as Lambda's on-failure record;
- a chain of invocations past 16 hops (counted in the trace header botocore forwards from
  inside a function) is cut unless the function's ``recursive_loop`` is ``"Allow"``.

Asynchronous::

    service = LambdaService()
    endpoint = await service.start()      # clients: AWS_ENDPOINT_URL_LAMBDA=endpoint
    service.add_function(FunctionConfig(name="f", handler="app.handler", code_paths=[src]))
    result = await service.invoke("f", {"hello": 1})
    await service.wait_idle()
    await service.stop()

Synchronous (tests, the CLI)::

    with LambdaServiceThread() as lambdas:
        lambdas.add_function(...)
        lambdas.invoke("f", {"hello": 1}, invocation_type="Event")
        lambdas.wait_idle(timeout=30)
        print(lambdas.records("f"))
"""

from __future__ import annotations

from asynccfn.local._functions import FunctionConfig, RecursiveLoop
from asynccfn.local._invoke_api import InvokeError, InvokeFault
from asynccfn.local._lineage import MAX_HOPS
from asynccfn.local._records import (
    ApiCall,
    FailureCondition,
    InvocationRecord,
    InvocationType,
    InvokeResult,
    Outcome,
)
from asynccfn.local._service import LambdaService
from asynccfn.local._thread import LambdaServiceThread

__all__ = [
    "MAX_HOPS",
    "ApiCall",
    "FailureCondition",
    "FunctionConfig",
    "InvocationRecord",
    "InvocationType",
    "InvokeError",
    "InvokeFault",
    "InvokeResult",
    "LambdaService",
    "LambdaServiceThread",
    "Outcome",
    "RecursiveLoop",
]
