"""What the local Lambda service lets tests read and plan, safe to use from any thread.

The service's loop writes invocation records, worker output and Invoke API calls here, and
takes planned Invoke API faults from here; a test thread reads and plans through the same
lock.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from asynccfn.local._invoke_api import InvokeFault
from asynccfn.local._records import ApiCall, InvocationRecord

__all__ = ["Ledger"]


@dataclass(eq=False, kw_only=True)
class _PlannedFault:
    fault: InvokeFault
    remaining: int | None  # None: every call


class Ledger:
    """Records, output, API calls and planned faults of one service, behind one lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[InvocationRecord] = []
        self._output: dict[str, list[str]] = {}
        self._api_calls: list[ApiCall] = []
        self._faults: dict[str | None, list[_PlannedFault]] = {}

    def add_function(self, function: str) -> None:
        """Start collecting the output of ``function``. Raises nothing."""
        with self._lock:
            self._output.setdefault(function, [])

    def add_record(self, record: InvocationRecord) -> None:
        """Append one invocation record. Raises nothing."""
        with self._lock:
            self._records.append(record)

    def records(self, function: str | None = None) -> list[InvocationRecord]:
        """Invocation records, oldest first, of ``function`` or of all. Raises nothing."""
        with self._lock:
            return [r for r in self._records if function is None or r.function == function]

    def add_output(self, function: str, line: str) -> None:
        """Append one line printed by a worker of ``function``. Raises nothing."""
        with self._lock:
            self._output.setdefault(function, []).append(line)

    def output(self, function: str) -> list[str]:
        """Lines printed by ``function``'s workers. Raises ``KeyError`` for an unknown one."""
        with self._lock:
            return list(self._output[function])

    def add_api_call(self, call: ApiCall) -> None:
        """Append one Invoke API call. Raises nothing."""
        with self._lock:
            self._api_calls.append(call)

    def api_calls(self, function: str | None = None) -> list[ApiCall]:
        """Invoke API calls, oldest first, to ``function`` or to all. Raises nothing."""
        with self._lock:
            return [c for c in self._api_calls if function is None or c.function == function]

    def plan_fault(self, function: str | None, fault: InvokeFault, times: int | None) -> None:
        """Answer the next ``times`` calls (``None``: all) to ``function`` (``None``: any) with
        ``fault``, after the faults already planned for it. Raises nothing."""
        with self._lock:
            self._faults.setdefault(function, []).append(
                _PlannedFault(fault=fault, remaining=times)
            )

    def clear_faults(self, function: str | None = None) -> None:
        """Forget the faults planned for ``function``, or all of them. Raises nothing."""
        with self._lock:
            if function is None:
                self._faults.clear()
            else:
                self._faults.pop(function, None)

    def take_fault(self, function: str) -> InvokeFault | None:
        """Use up the next fault for a call to ``function``: its own first, then any-function
        ones. Raises nothing."""
        with self._lock:
            for key in (function, None):
                plans = self._faults.get(key)
                if not plans:
                    continue
                plan = plans[0]
                if plan.remaining is not None:
                    plan.remaining -= 1
                    if plan.remaining == 0:
                        plans.pop(0)
                return plan.fault
        return None
