"""The Lambda handler the local runner deploys: ``asynccfn.local._handler.handler``.

It serves the resource that ``ASYNCCFN_LOCAL_RESOURCE`` names (``MODULE:RESOURCE``) through
``lambda_entry``, exactly as a deployed function would: the module is imported in the worker's
init phase, and the journal table comes from ``ASYNCCFN_JOURNAL_TABLE`` unless the module's own
``lambda_entry(..., journal=...)`` names one.
"""

from __future__ import annotations

import os

from asynccfn.local._loader import LOCAL_LEASE, RESOURCE_ENV, load_handler

handler = load_handler(os.environ[RESOURCE_ENV], lease=LOCAL_LEASE)
