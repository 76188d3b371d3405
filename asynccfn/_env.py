"""The environment variables a deployed function reads, each named once.

The Lambda entry reads them; the CLI (``table``, ``doctor``, ``journal``) and the local runner
write or check them. A module of names only, so neither path drags the other in.
"""

from __future__ import annotations

JOURNAL_TABLE_ENV = "ASYNCCFN_JOURNAL_TABLE"  # the journal table, when lambda_entry names none
KMS_KEY_ENV = "ASYNCCFN_KMS_KEY"  # the payload codec's key, when codec= is not given
LAMBDA_RUNTIME_API_ENV = "AWS_LAMBDA_RUNTIME_API"  # set for the function's process by Lambda's
# runtime (and by the local Lambda service for its workers): the function runs inside Lambda
