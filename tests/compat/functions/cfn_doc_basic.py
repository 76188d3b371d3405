"""The cfn-lambda-handler documentation's first example ("Defining the Handler"), as written
there but for two things:

- the import names ``asynccfn.compat.cfn_lambda_handler`` instead of ``cfn_lambda_handler``;
- the documentation's ``{ "Status": "FAILURE": "Reason": ... }`` is a syntax error: its
  second ``:`` is a ``,`` here.

``failed``, which the example leaves to the reader, is defined after it from the function's
environment. The ``...`` placeholders are kept: the Update and Delete functions return None.

The example keeps the documentation's layout (two-space indents): formatting is off for it.
"""

# -- the documented example ------------------------------------------------------------------
# fmt: off

from asynccfn.compat.cfn_lambda_handler import Handler

handler = Handler()

# This will be used as the entrypoint for CloudFormation 'Create' requests
@handler.create
def handle_create(event, context):
  print(event)
  ...
  ...
  if failed:
    return { "Status": "FAILURE", "Reason": "Some failure occurred" }
  else:
    return { "Status": "SUCCESS", "PhysicalResourceId": "1234" }

# This will be used as the entrypoint for CloudFormation 'Update' requests
@handler.update
def handle_update(event, context):
  ...
  ...

# This will be used as the entrypoint for CloudFormation 'Delete' requests
@handler.delete
def handle_delete(event, context):
  ...
  ...

# fmt: on
# -- what the example leaves to the reader -----------------------------------------------------

import os  # noqa: E402

failed = os.environ.get("DOC_FAILED") == "1"
