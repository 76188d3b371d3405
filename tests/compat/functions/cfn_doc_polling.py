"""The cfn-lambda-handler documentation's polling example, as written there but for:

- the import names ``asynccfn.compat.cfn_lambda_handler`` instead of ``cfn_lambda_handler``;
- two bugs of the documentation that stop it in any implementation: ``poll(event)`` in
  ``handle_poll`` lacks the ``context`` argument (a TypeError), and the Create event has no
  ``EventState`` yet (a KeyError), so ``poll`` reads it with ``.get``;
- its two times, scaled for a 3-second test function: a 1000 ms margin instead of 20000 and a
  0.5 s sleep instead of 10.

``check_complete``, which the example leaves to the reader, is defined after it: the resource
it polls is ready at the ``ReadyAtCheck``-th invocation that checks it (counted in the state,
so the operation needs that many invocations whatever the machine's speed). It returns the new
state, a dict (so that it is JSON) with the ``complete`` attribute the example reads, and notes
what each call saw in ``$COMPAT_RUN_DIR/polls.log`` for the tests.

The example keeps the documentation's layout (two-space indents, long comments): formatting
and these lint rules are off for it.
"""
# ruff: noqa: E501, I001

# -- the documented example ------------------------------------------------------------------
# fmt: off

import time
from asynccfn.compat.cfn_lambda_handler import Handler, CfnLambdaExecutionTimeout

handler = Handler()

def poll(event, context):
  # This performs some polling operation
  some_state = event.get('EventState')
  while True:
    # If the remaining execution time is < 20 seconds, signal the handler to invoke a new Lambda function
    if context.get_remaining_time_in_millis() < 1000:
      # Here we raise a timeout exception, along with the state we want to persist
      # This state is available in the EventState property of the event
      raise CfnLambdaExecutionTimeout(some_state)
    some_state = check_complete(event)
    if some_state.complete:
      return { "Status":"SUCCESS" }
    # Sleep for 10 seconds
    time.sleep(0.5)

@handler.create
def handle_create(event, context):
  # Set the maximum timeout.  Note it is greater than the current maximum 300 seconds timeout allowed for AWS Lambda
  event['Timeout'] = 1800
  return poll(event, context)

@handler.poll
def handle_poll(event, context):
  # The poll handler is called for any invocation of the Lambda function post the initial Create or Update operation
  # Here we just continue the internal polling process
  return poll(event, context)

# fmt: on
# -- what the example leaves to the reader -----------------------------------------------------

import json  # noqa: E402
import os  # noqa: E402
from pathlib import Path  # noqa: E402


class Progress(dict):
    """The polled resource's state: JSON, with the ``complete`` attribute the example reads."""

    @property
    def complete(self):
        return self["Complete"]


def check_complete(event):
    checks = (event.get("EventState") or {}).get("Checks", 0) + 1
    progress = Progress(
        Checks=checks,
        Complete=checks >= int(event["ResourceProperties"]["ReadyAtCheck"]),
    )
    seen = {
        "EventStatus": event.get("EventStatus"),
        "EventState": event.get("EventState"),
        "Timeout": event.get("Timeout"),
        "Made": progress,
    }
    with (Path(os.environ["COMPAT_RUN_DIR"]) / "polls.log").open("a") as log:
        log.write(json.dumps(seen) + "\n")
    return progress
