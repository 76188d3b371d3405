"""The one redaction point for error text (asynccfn/_redact.py), against botocore's own
exceptions: what a failed ``ctx.call`` raises never repeats a sensitive value."""

from __future__ import annotations

import json
import traceback
from collections.abc import Iterator

import botocore.session
import pytest
from botocore.exceptions import ClientError, ParamValidationError

import asynccfn
from asynccfn._aws import prepare_call
from asynccfn._redact import Redactor, masked_json, masking

SECRET = "s3cr3t-Pa55w0rd-4f1c9e"


def everything_about(exc: BaseException) -> str:
    """All text the exception can put in a log line, a journal item or a response."""
    return "\n".join(
        [str(exc), repr(exc), repr(exc.args), repr(vars(exc)), *traceback.format_exception(exc)]
    )


@pytest.fixture(scope="module")
def secretsmanager() -> Iterator[object]:
    session = botocore.session.get_session()
    client = session.create_client(
        "secretsmanager", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b"
    )
    yield client
    client.close()


def test_param_validation_error_names_the_parameter_not_the_value(secretsmanager: object) -> None:
    request = {"Name": "db", "SecretString": {"username": "admin", "password": SECRET}}
    prepared = prepare_call(secretsmanager.create_secret, request, seed="op/0#1")  # type: ignore[attr-defined]
    with pytest.raises(ParamValidationError) as caught:
        secretsmanager.create_secret(**prepared.request)  # type: ignore[attr-defined]
    assert SECRET in str(caught.value)  # botocore's own message repeats the value
    masked = prepared.redactor.error(caught.value)
    assert isinstance(masked, ParamValidationError)
    assert "SecretString" in str(masked) and "Invalid type" in str(masked)
    assert SECRET not in everything_about(masked)
    assert "admin" not in str(masked)  # nothing of the value, not just the secret part


def test_param_validation_errors_of_other_members_keep_their_names(
    secretsmanager: object,
) -> None:
    request = {"SecretId": 7, "Bogus": SECRET}
    with pytest.raises(ParamValidationError) as caught:
        secretsmanager.get_secret_value(**request)  # type: ignore[attr-defined]
    masked = Redactor().error(caught.value)
    text = str(masked)
    assert "SecretId" in text and '"Bogus"' in text
    assert SECRET not in everything_about(masked) and "7," not in text


def test_nested_sensitive_members_are_found_by_the_model() -> None:
    session = botocore.session.get_session()
    client = session.create_client(
        "lambda", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b"
    )
    request = {"FunctionName": "f", "Environment": {"Variables": {"DB_PASSWORD": SECRET}}}
    prepared = prepare_call(client.create_function, request, seed="s")
    assert prepared.redactor.text(f"refused {SECRET!r}") == "refused ****"
    assert prepared.redactor.text("FunctionName f") == "FunctionName f"  # not sensitive
    client.close()


def test_client_error_keeps_its_code_and_status_with_the_value_masked() -> None:
    response = {
        "Error": {"Code": "ValidationException", "Message": f"bad value {SECRET}"},
        "ResponseMetadata": {"HTTPStatusCode": 400},
    }
    error = ClientError(response, "CreateSecret")  # type: ignore[arg-type]
    masked = Redactor([{"password": SECRET}]).error(error)
    assert type(masked) is ClientError
    assert masked.response["Error"]["Code"] == "ValidationException"
    assert masked.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "bad value ****" in str(masked)
    assert SECRET not in everything_about(masked)


def test_any_exception_is_copied_with_the_value_masked_in_args_and_attributes() -> None:
    class Odd(Exception):
        pass

    error = Odd(f"rejected {SECRET}", 3)
    error.detail = {"echo": [SECRET]}  # type: ignore[attr-defined]
    masked = Redactor([SECRET]).error(error)
    assert type(masked) is Odd and masked.args == ("rejected ****", 3)
    assert SECRET not in everything_about(masked)
    untouched = ValueError("nothing secret here")
    assert Redactor([SECRET]).error(untouched) is untouched


def test_an_exception_that_cannot_be_copied_clean_becomes_step_failed() -> None:
    class Stubborn(Exception):
        def __str__(self) -> str:
            return f"always {SECRET}"

    masked = Redactor([SECRET]).error(Stubborn())
    assert isinstance(masked, asynccfn.StepFailed)
    assert masked.type_name.endswith("Stubborn") and masked.message == "always ****"
    assert SECRET not in everything_about(masked)


@pytest.mark.parametrize(
    "value",
    [SECRET, {"k": SECRET}, [SECRET, "x"], SECRET.encode(), {"n": {"deeper": [SECRET]}}],
)
def test_every_form_of_a_value_is_masked(value: object) -> None:
    redactor = Redactor([value])
    for text in (str(value), repr(value), f"got {value!r}, type {type(value)}"):
        assert SECRET not in redactor.text(text), text


def test_json_text_that_holds_a_secret_is_masked_value_by_value_and_stays_json() -> None:
    secret = "https://bucket.s3.amazonaws.com/key?X-Amz-Signature=abc"
    value = {"callback": secret, "nested": [f"see {secret}", 3, None], secret: True}
    text = json.dumps(value)
    with masking(Redactor([secret])):
        masked = masked_json(value, text, json.dumps)
        untouched = {"job": "j-1"}
        assert masked_json(untouched, json.dumps(untouched), json.dumps) == json.dumps(untouched)
    # a secret's JSON form carries its quotes: masking the text alone would break the JSON
    assert json.loads(masked) == {"callback": "****", "nested": ["see ****", 3, None], "****": True}
    assert masked_json(value, text, json.dumps) == text  # outside an invocation: as it is
