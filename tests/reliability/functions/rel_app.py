"""The custom resource the reliability suite deploys to the local Lambda service.

Its step bodies append ``<tag> <what> <pid> <invocation>`` lines to ``$REL_RUN_DIR/runs.log``;
the tests count them to see how often a body ran. Properties choose the misbehaviour:

- ``Steps``/``Seconds``/``Needs``: that many durable steps of that length (``needs=``);
- ``Sleep``: a durable sleep first (an operation that spans many invocations);
- ``PauseAt``: before that step, a durable sleep just past the soft deadline: one hand-over
  exactly there, whatever the timing;
- ``CrashInStep``: SIGKILL inside that step's body, the first time only (mid-step crash);
- ``BlockAfterStep``/``BlockSeconds``: block the event loop after that step, the first time
  only, so the heartbeat cannot renew the lease (a frozen container), until the test creates
  ``$REL_RUN_DIR/thaw`` or the seconds pass;
- ``AlwaysCrash``: SIGKILL on every run; ``Hang``: block past the Lambda timeout every time;
- ``Secret``: answer NoEcho with it as Data; ``Data``: answer with exactly that Data;
- ``Raise``: fail with that message.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import asynccfn

RUN_DIR = Path(os.environ.get("REL_RUN_DIR", "/tmp"))


def note(tag: str, what: str, ctx: asynccfn.Context) -> None:
    with (RUN_DIR / "runs.log").open("a") as log:
        log.write(f"{tag} {what} {os.getpid()} {ctx.invocation}\n")


def first_time(marker: str) -> bool:
    """True once per test (a file in the run folder marks it)."""
    path = RUN_DIR / f"{marker}.marker"
    try:
        with path.open("x"):
            return True
    except FileExistsError:
        return False


work = asynccfn.Resource()


@work.create
@work.update
async def create(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
    props = request.properties
    tag = str(props.get("Tag", "op"))
    if props.get("AlwaysCrash"):
        note(tag, "crash", ctx)
        os.kill(os.getpid(), signal.SIGKILL)
    if "Hang" in props:
        note(tag, "hang", ctx)
        time.sleep(float(props["Hang"]))  # noqa: ASYNC251 - blocks the loop: no answer
    if "Raise" in props:
        raise RuntimeError(str(props["Raise"]))
    if "Sleep" in props:
        await ctx.sleep(float(props["Sleep"]), name="nap")
    count = int(props.get("Steps", 0))
    seconds = float(props.get("Seconds", 0.05))
    needs = float(props["Needs"]) if "Needs" in props else None
    crash_in = int(props.get("CrashInStep", 0))
    block_after = int(props.get("BlockAfterStep", 0))
    pause_at = int(props.get("PauseAt", 0))
    ctx.state.setdefault("done", 0)
    total = 0
    for i in range(1, count + 1):
        if i == pause_at:
            await ctx.sleep(ctx.remaining + 0.05, name="pause")

        async def body(i: int = i) -> int:
            note(tag, f"start {i}", ctx)
            if i == crash_in and first_time(f"{tag}-crash-{i}"):
                os.kill(os.getpid(), signal.SIGKILL)
            await asyncio.sleep(seconds)
            note(tag, f"end {i}", ctx)
            return i * 10

        total += await ctx.step(f"step-{i}", body, needs=needs)
        ctx.state["done"] += 1  # replay must not double-count this
        if i == block_after and first_time(f"{tag}-block"):
            note(tag, "blocking", ctx)
            thaw_at = time.monotonic() + float(props.get("BlockSeconds", 8))
            while time.monotonic() < thaw_at and not (RUN_DIR / "thaw").exists():
                # the loop is blocked: no heartbeat, as in a frozen container
                time.sleep(0.05)  # noqa: ASYNC251
            note(tag, "unblocked", ctx)
    data: Any = {"Done": str(ctx.state["done"]), "Total": str(total)}
    if "Secret" in props:
        return asynccfn.Success(
            physical_id=f"{tag}-id", data={"Password": props["Secret"]}, no_echo=True
        )
    if "Data" in props:
        data = props["Data"]
    return asynccfn.Success(physical_id=f"{tag}-id", data=data)


@work.delete
async def delete(request: asynccfn.Request, ctx: asynccfn.Context) -> asynccfn.Success:
    note(str(request.properties.get("Tag", "op")), "delete", ctx)
    return asynccfn.Success()


class CrashAt:
    """The probe of the crash matrix: SIGKILL this process at the point ``REL_CRASH_AT`` names
    (``point`` or ``point@N``, the N-th time it is reached here), once per test: a marker file
    in ``REL_CRASH_MARKERS`` keeps the redelivered invocation from crashing again."""

    def __init__(self, spec: str, markers: str | None) -> None:
        point, _, nth = spec.partition("@")
        self.point_name = point
        self.wanted = int(nth) if nth.isdigit() else 1
        self.markers = Path(markers) if markers else None
        self.seen = 0

    def point(self, name: str) -> None:
        if name != self.point_name:
            return
        self.seen += 1
        if self.seen != self.wanted:
            return
        if self.markers is not None:
            marker = self.markers / f"crashed-{name}"
            if marker.exists():
                return
            marker.write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)

    def step_recorded(self) -> bool:
        return False


handler = asynccfn.lambda_entry(
    work,
    probe=CrashAt(os.environ["REL_CRASH_AT"], os.environ.get("REL_CRASH_MARKERS"))
    if os.environ.get("REL_CRASH_AT")
    else None,
    lease=float(os.environ.get("REL_LEASE", "30")),
    lease_skew=float(os.environ.get("REL_LEASE_SKEW", "2")),
    reserve=float(os.environ["REL_RESERVE"]) if "REL_RESERVE" in os.environ else None,
)
