"""The Lambda handler ``asynccfn local --handover-every-step`` deploys: the one of
:mod:`asynccfn.local._handler`, with a probe that hands over after every recorded step, so that
every step after the first is reached through replay in a new invocation.
"""

from __future__ import annotations

import os

from asynccfn._probe import HAND_OVER_EVERY_STEP
from asynccfn.local._loader import LOCAL_LEASE, RESOURCE_ENV, load_handler

handler = load_handler(os.environ[RESOURCE_ENV], probe=HAND_OVER_EVERY_STEP, lease=LOCAL_LEASE)
