"""Compatibility layers: other custom-resource APIs, run on asynccfn's durable runtime.

- :mod:`asynccfn.compat.cfn_lambda_handler`: the ``cfn-lambda-handler`` package's ``Handler``
  and ``CfnLambdaExecutionTimeout``.
"""
