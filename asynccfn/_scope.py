"""Step positions: each sequential flow (the handler, or one ctx.parallel branch) is a scope
that hands out positions in program order, and refuses a second step while one runs."""

from __future__ import annotations

import contextvars

from ._errors import ConcurrentStepError


class Scope:
    """Positions for the steps of one sequential flow (the handler, or a parallel branch)."""

    __slots__ = ("_children", "_seq", "path", "running")

    def __init__(self, path: str) -> None:
        self.path = path
        self._seq = 0
        self._children = 0
        self.running: str | None = None

    def begin(self, name: str) -> str:
        """The next position, for a step called ``name``.

        Raises:
            ConcurrentStepError: another step of this scope is still running.
        """
        if self.running is not None:
            raise ConcurrentStepError(
                f"step {name!r} started while step {self.running!r} is still running in the "
                "same scope; positions would depend on timing and replay could swap results. "
                "Run concurrent steps with ctx.parallel(...), which gives each branch its own "
                "scope"
            )
        self._seq += 1
        self.running = name
        return f"{self.path}#{self._seq:05d}"

    def end(self) -> None:
        self.running = None

    def peek(self) -> str:
        """The position the next step of this scope will take."""
        return f"{self.path}#{self._seq + 1:05d}"

    def child(self) -> Scope:
        self._children += 1
        return Scope(f"{self.path}.{self._children}")


# The scope of the running task: ctx.parallel sets a child scope in each branch's task.
current_scope: contextvars.ContextVar[Scope] = contextvars.ContextVar("asynccfn_scope")
