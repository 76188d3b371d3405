"""A testing seam: hand over after every recorded step, so that every step after the first is
reached through replay in a new invocation.

Off unless ``ASYNCCFN_HANDOVER_AFTER_STEP`` is set (to anything but ``0``) when the module is
imported: read once, so the executor's check costs one boolean test. ``asynccfn.testing`` and
``asynccfn local --handover-every-step`` set it in the function's environment. The executor
then stops starting new work once a step's finished result is recorded, exactly as at the soft
deadline, so the next durable action hands over.
"""

from __future__ import annotations

import os

ENV = "ASYNCCFN_HANDOVER_AFTER_STEP"
ACTIVE = os.environ.get(ENV, "") not in ("", "0")
