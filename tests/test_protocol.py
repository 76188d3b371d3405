"""Request parsing and validation, the response body, redaction (asynccfn._protocol)."""

from __future__ import annotations

import calendar
import copy
import hashlib
import json
import pickle
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from protocol_events import (
    CREATE,
    EVENTS,
    MISSING,
    SERVICE_TOKEN,
    STACK_ID,
    event,
    response_url,
    url_secrets,
)

from asynccfn._errors import RequestError, ResponseURLRefused
from asynccfn._protocol import (
    FAILED_CREATE_MARKER_PREFIX,
    MASK,
    MAX_BODY_BYTES,
    MAX_PHYSICAL_ID_BYTES,
    TRUNCATION_MARKER,
    Echo,
    Request,
    RequestType,
    Response,
    Status,
    allowed_hosts_from_env,
    build_body,
    check_response_url,
    describe_url,
    failed_create_physical_id,
    failure_physical_id,
    is_failed_create_marker,
    mask_no_echo,
    masked_body,
    parse_request,
)
from asynccfn._urls import url_key_identifiers

NO_HOSTS: frozenset[str] = frozenset()
ECHO = Echo(stack_id=STACK_ID, request_id=CREATE["RequestId"], logical_id="DemoBucket")


def parse(raw: object, allowed_hosts: frozenset[str] = NO_HOSTS) -> Request:
    return parse_request(raw, allowed_hosts=allowed_hosts)


def refusal(raw: dict[str, Any]) -> RequestError:
    with pytest.raises(RequestError) as caught:
        parse(raw)
    error = caught.value
    for secret in url_secrets(CREATE["ResponseURL"]):
        assert secret not in error.reason
        assert secret not in str(error)
        assert secret not in repr(error)
    return error


def decoded(body: bytes) -> dict[str, Any]:
    assert len(body) <= MAX_BODY_BYTES
    result: dict[str, Any] = json.loads(body.decode("utf-8"))
    return result


# --- the fixture events ----------------------------------------------------------------------


def test_create_event_parses() -> None:
    request = parse(event("create"))
    assert request.request_type is RequestType.CREATE
    assert request.stack_id == STACK_ID
    assert request.request_id == "0f5f0c1e-0d8e-4c1b-9a53-0c6a2f6f1f11"
    assert request.logical_id == "DemoBucket"
    assert request.resource_type == "Custom::Bucket"
    assert request.physical_id is None
    assert request.old_properties is None
    assert request.service_token == SERVICE_TOKEN
    assert request.service_timeout is None
    assert request.properties == CREATE["ResourceProperties"]
    assert request.properties["ServiceToken"] == SERVICE_TOKEN
    assert request.response_url == CREATE["ResponseURL"]
    issued = calendar.timegm((2026, 11, 22, 12, 0, 0, 0, 0, 0))
    assert request.issued_at == issued
    assert request.url_expires_at == issued + 7200
    assert request.echo == Echo(
        stack_id=STACK_ID, request_id=request.request_id, logical_id="DemoBucket"
    )


def test_update_event_parses() -> None:
    raw = event("update")
    request = parse(raw)
    assert request.request_type is RequestType.UPDATE
    assert request.physical_id == "demo-bucket"
    assert request.properties == raw["ResourceProperties"]
    assert request.old_properties == raw["OldResourceProperties"]
    assert request.properties != request.old_properties


def test_delete_event_parses() -> None:
    request = parse(event("delete"))
    assert request.request_type is RequestType.DELETE
    assert request.physical_id == "demo-bucket"
    assert request.old_properties is None
    assert request.issued_at == calendar.timegm((2026, 11, 22, 12, 20, 0, 0, 0, 0))


@pytest.mark.parametrize("kind", sorted(EVENTS))
def test_repr_and_str_never_show_the_url_or_properties(kind: str) -> None:
    request = parse(event(kind))
    for text in (repr(request), str(request)):
        for secret in url_secrets(request.response_url):
            assert secret not in text
        assert "demo-bucket" not in text or request.physical_id == "demo-bucket"
        assert "Versioning" not in text
    assert "request_id=" in repr(request)


def test_attempt_digest_is_sha256_of_the_url() -> None:
    request = parse(event("create"))
    expected = hashlib.sha256(CREATE["ResponseURL"].encode()).hexdigest()
    assert request.attempt_digest == expected
    retried = parse(event("create", ResponseURL=CREATE["ResponseURL"].replace("0000", "9999")))
    assert retried.attempt_digest != expected
    assert retried.echo == request.echo


def test_unknown_top_level_keys_are_tolerated() -> None:
    request = parse(event("create", HandOverToken="abc", SomethingNew={"x": [1]}))
    assert request.request_type is RequestType.CREATE


def test_absent_properties_are_an_empty_mapping() -> None:
    request = parse(event("create", ResourceProperties=MISSING))
    assert dict(request.properties) == {}


def test_generic_resource_type_is_accepted() -> None:
    request = parse(event("create", ResourceType="AWS::CloudFormation::CustomResource"))
    assert request.resource_type == "AWS::CloudFormation::CustomResource"


def test_sixty_character_resource_type_is_accepted() -> None:
    name = "Custom::" + "A" * 52
    assert len(name) == 60
    assert parse(event("create", ResourceType=name)).resource_type == name


def test_sigv2_url_expiry() -> None:
    url = (
        f"{CREATE['ResponseURL'].split('?')[0]}"
        "?AWSAccessKeyId=AKIAEXAMPLE&Expires=1795356000&Signature=abc%2Bdef%3D"
    )
    request = parse(event("create", ResponseURL=url))
    assert request.issued_at is None
    assert request.url_expires_at == 1795356000.0


@pytest.mark.parametrize(
    "amz_date", ["20260231T120000Z", "20261322T120000Z", "20261122T240000Z", "20261122T126000Z"]
)
def test_an_amz_date_of_no_such_time_gives_no_times(amz_date: str) -> None:
    url = CREATE["ResponseURL"].replace("20261122T120000Z", amz_date)
    request = parse(event("create", ResponseURL=url))
    assert request.issued_at is None
    assert request.url_expires_at is None


def test_an_amz_date_is_read_as_utc() -> None:
    url = CREATE["ResponseURL"].replace("20261122T120000Z", "20240229T235959Z")
    request = parse(event("create", ResponseURL=url))
    assert request.issued_at == calendar.timegm((2024, 2, 29, 23, 59, 59, 0, 0, 0))
    assert request.url_expires_at is not None
    assert request.url_expires_at > request.issued_at


def test_malformed_amz_date_gives_no_times() -> None:
    url = CREATE["ResponseURL"].replace("20261122T120000Z", "2026-11-22")
    request = parse(event("create", ResponseURL=url))
    assert request.issued_at is None
    assert request.url_expires_at is None


# --- read-only properties ------------------------------------------------------------------


def test_properties_are_read_only() -> None:
    request = parse(event("update"))
    properties: Any = request.properties
    with pytest.raises(TypeError, match="read-only"):
        properties["BucketName"] = "other"
    with pytest.raises(TypeError):
        del properties["BucketName"]
    with pytest.raises(TypeError):
        properties.update(x=1)
    with pytest.raises(TypeError):
        properties.setdefault("x", 1)
    with pytest.raises(TypeError):
        properties["Tags"].append({})
    with pytest.raises(TypeError):
        properties["Tags"][0]["Key"] = "other"
    with pytest.raises(TypeError):
        properties["Tags"] += [1]
    assert request.properties == event("update")["ResourceProperties"]


def test_properties_behave_as_json() -> None:
    request = parse(event("create"))
    assert isinstance(request.properties, dict)
    assert isinstance(request.properties["Tags"], list)
    assert json.loads(json.dumps(request.properties)) == CREATE["ResourceProperties"]
    assert pickle.loads(pickle.dumps(request.properties)) == CREATE["ResourceProperties"]


def test_deepcopy_of_properties_is_mutable() -> None:
    request = parse(event("create"))
    mutable: Any = copy.deepcopy(request.properties)
    mutable["Tags"].append({"Key": "x", "Value": "y"})
    mutable["BucketName"] = "changed"
    assert type(mutable) is dict
    assert request.properties["BucketName"] == "demo-bucket"
    assert len(request.properties["Tags"]) == 1


def test_properties_do_not_alias_the_event() -> None:
    raw = event("create")
    request = parse(raw)
    raw["ResourceProperties"]["BucketName"] = "changed"
    raw["ResourceProperties"]["Tags"].clear()
    assert request.properties["BucketName"] == "demo-bucket"
    assert len(request.properties["Tags"]) == 1


# --- malformed events ----------------------------------------------------------------------

HAS_ECHO = True
NO_ECHO = False  # the identifiers are not valid: the echo comes from the URL's object key

MALFORMED: list[tuple[str, dict[str, Any], str, bool]] = [
    ("create", {"RequestType": MISSING}, "RequestType is missing", HAS_ECHO),
    ("create", {"RequestType": "Craete"}, "RequestType must be one of", HAS_ECHO),
    ("create", {"RequestType": "create"}, "got 'create'", HAS_ECHO),
    ("create", {"RequestType": 1}, "got 1", HAS_ECHO),
    ("create", {"StackId": MISSING}, "StackId is missing", NO_ECHO),
    ("create", {"StackId": ""}, "StackId is empty", NO_ECHO),
    ("create", {"StackId": 5}, "StackId must be a string; got number", NO_ECHO),
    ("create", {"RequestId": MISSING}, "RequestId is missing", NO_ECHO),
    ("create", {"RequestId": None}, "RequestId must be a string; got null", NO_ECHO),
    ("create", {"LogicalResourceId": ["x"]}, "got array", NO_ECHO),
    ("create", {"LogicalResourceId": "L" * 300}, "LogicalResourceId is too long", NO_ECHO),
    ("create", {"StackId": "s" * 2000}, "StackId is too long", NO_ECHO),
    ("create", {"ResourceType": MISSING}, "ResourceType is missing", HAS_ECHO),
    ("create", {"ResourceType": "Bucket"}, "ResourceType must be", HAS_ECHO),
    ("create", {"ResourceType": "Custom::"}, "ResourceType must be", HAS_ECHO),
    ("create", {"ResourceType": "Custom::Bad Name"}, "got 'Custom::Bad Name'", HAS_ECHO),
    ("create", {"ResourceType": "Custom::" + "A" * 53}, "at most 60 characters", HAS_ECHO),
    ("create", {"ResourceType": 7}, "ResourceType must be", HAS_ECHO),
    ("create", {"ServiceToken": MISSING}, "ServiceToken is missing", HAS_ECHO),
    ("create", {"ServiceToken": ""}, "ServiceToken must be a non-empty string", HAS_ECHO),
    ("create", {"ServiceToken": {}}, "got object", HAS_ECHO),
    ("create", {"ResourceProperties": []}, "ResourceProperties must be a JSON object", HAS_ECHO),
    ("create", {"ResourceProperties": "x"}, "got string", HAS_ECHO),
    ("create", {"ResourceProperties": None}, "got null", HAS_ECHO),
    ("create", {"ResourceProperties": {"a": {1: 2}}}, "key that is not a string", HAS_ECHO),
    ("create", {"ResourceProperties": {"a": {1, 2}}}, "cannot represent (set)", HAS_ECHO),
    ("update", {"OldResourceProperties": MISSING}, "OldResourceProperties is missing", HAS_ECHO),
    ("update", {"OldResourceProperties": [1]}, "OldResourceProperties must be", HAS_ECHO),
    ("update", {"PhysicalResourceId": MISSING}, "PhysicalResourceId is missing", HAS_ECHO),
    ("delete", {"PhysicalResourceId": MISSING}, "PhysicalResourceId is missing", HAS_ECHO),
    ("delete", {"PhysicalResourceId": ""}, "PhysicalResourceId is empty", HAS_ECHO),
    ("delete", {"PhysicalResourceId": 5}, "PhysicalResourceId must be a string", HAS_ECHO),
    ("delete", {"PhysicalResourceId": "p" * 1025}, "the limit is 1024", HAS_ECHO),
    ("create", {"ServiceTimeout": 0}, "ServiceTimeout must be a number", HAS_ECHO),
    ("create", {"ServiceTimeout": 3601}, "got 3601", HAS_ECHO),
    ("create", {"ServiceTimeout": "3601"}, "got '3601'", HAS_ECHO),
    ("create", {"ServiceTimeout": "soon"}, "got 'soon'", HAS_ECHO),
    ("create", {"ServiceTimeout": "nan"}, "ServiceTimeout", HAS_ECHO),
    ("create", {"ServiceTimeout": "1e3"}, "ServiceTimeout", HAS_ECHO),
    ("create", {"ServiceTimeout": float("inf")}, "ServiceTimeout", HAS_ECHO),
    ("create", {"ServiceTimeout": True}, "got boolean", HAS_ECHO),
    ("create", {"ServiceTimeout": [60]}, "got array", HAS_ECHO),
    ("create", {"ServiceTimeout": 10**400}, "digit number", HAS_ECHO),
]


@pytest.mark.parametrize(("kind", "changes", "expected", "has_echo"), MALFORMED)
def test_malformed_event_is_refused_with_a_clear_reason(
    kind: str, changes: dict[str, Any], expected: str, has_echo: bool
) -> None:
    raw = event(kind, **changes)
    error = refusal(raw)
    assert type(error) is RequestError
    assert expected in error.reason
    assert error.args == (error.reason,)
    # The URL passed the allow-list, so the runtime can still answer FAILED, echoing valid
    # identifiers as given and recovering the others from the URL's object key.
    assert error.echo == parse(event(kind)).echo
    assert error.response_url == raw["ResponseURL"]


@pytest.mark.parametrize("raw", [[], "Create", None, 3, [CREATE]])
def test_non_object_event_is_refused(raw: object) -> None:
    with pytest.raises(RequestError, match="the event must be a JSON object") as caught:
        parse(raw)
    assert caught.value.echo is None
    assert caught.value.response_url is None


def test_every_problem_is_named() -> None:
    error = refusal(event("update", RequestType="Upsert", ResourceType="Bucket", StackId=""))
    assert "StackId is empty" in error.reason
    assert "RequestType must be one of" in error.reason
    assert "ResourceType must be" in error.reason
    assert error.echo == Echo(
        stack_id=STACK_ID, request_id=EVENTS["update"]["RequestId"], logical_id="DemoBucket"
    )


# A URL of an allowed host whose object key is not StackId|LogicalResourceId|RequestId.
PLAIN_URL = "https://responses.example.test/r?X-Amz-Signature=abc"
PLAIN_HOSTS = frozenset({"responses.example.test"})


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"StackId": MISSING}, {"stack_id": ""}),
        ({"StackId": ""}, {"stack_id": ""}),
        ({"StackId": 5}, {"stack_id": ""}),
        ({"RequestId": None, "LogicalResourceId": ["x"]}, {"request_id": "", "logical_id": ""}),
        ({"LogicalResourceId": "L" * 300}, {"logical_id": "L" * 254}),  # JSON: with quotes
        ({"RequestId": "a\ud800b"}, {"request_id": "a?b"}),
        ({"StackId": "\x1b" * 400}, {"stack_id": "\x1b" * 170}),  # 6 bytes each as JSON
    ],
)
def test_identifiers_a_url_key_cannot_give_are_echoed_as_the_event_has_them(
    changes: dict[str, Any], expected: dict[str, str]
) -> None:
    with pytest.raises(RequestError) as caught:
        parse(event("create", ResponseURL=PLAIN_URL, **changes), PLAIN_HOSTS)
    error = caught.value
    assert error.response_url == PLAIN_URL
    valid = {"stack_id": STACK_ID, "request_id": CREATE["RequestId"], "logical_id": "DemoBucket"}
    assert error.echo == Echo(**{**valid, **expected})
    body = json.loads(build_body(Response(status=Status.FAILED, physical_id="p"), error.echo))
    assert body["Status"] == "FAILED"  # the echo always fits a body


def test_every_identifier_is_recovered_from_a_path_style_url_key() -> None:
    key = "arn%3Aaws%3Acloudformation%3Aeu-west-1%3A123456789012%3Astack/other/42%7CLogical%7Creq-9"
    url = f"https://responses.example.test/bucket/{key}?X-Amz-Signature=abc"
    raw = event("create", ResponseURL=url, StackId=MISSING, RequestId="", LogicalResourceId=7)
    with pytest.raises(RequestError) as caught:
        parse(raw, PLAIN_HOSTS)
    assert caught.value.echo == Echo(
        stack_id="arn:aws:cloudformation:eu-west-1:123456789012:stack/other/42",
        logical_id="Logical",
        request_id="req-9",
    )


def test_a_refused_url_recovers_nothing() -> None:
    with pytest.raises(ResponseURLRefused) as caught:
        parse(event("create", ResponseURL="ftp://x/y", StackId=MISSING))
    assert caught.value.echo is None and caught.value.response_url is None


KEY_STACK = "arn:aws:cloudformation:us-east-1:123456789012:stack/demo/1a2b"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (f"/{KEY_STACK}|Logical|req-1", (KEY_STACK, "Logical", "req-1")),
        (f"/bucket/{KEY_STACK}|L|r", (KEY_STACK, "L", "r")),  # path style: after the bucket
        (f"/x|y/{KEY_STACK}|L|r", (KEY_STACK, "L", "r")),  # a "|" before the last "/arn:"
        ("/arn:a/arn:b:stack/s|L|r", ("arn:a/arn:b:stack/s", "L", "r")),  # the longest StackId
        ("/arn::stack/s|L|r", ("arn::stack/s", "L", "r")),
        ("/arn:x:stack//|L|r", ("arn:x:stack//", "L", "r")),
        (f"/{KEY_STACK}|L|r%0A", (KEY_STACK, "L", "r\n")),
        ("/arn%3Ax%3Astack%2Fs%7CL%7Cr", ("arn:x:stack/s", "L", "r")),  # percent-encoded
    ],
)
def test_url_key_identifiers_reads_cloudformation_keys(
    path: str, expected: tuple[str, str, str]
) -> None:
    assert url_key_identifiers(f"https://responses.example.test{path}?X-Amz-Signature=a") == (
        expected
    )


@pytest.mark.parametrize(
    "path",
    [
        "",
        "/key",
        f"/{KEY_STACK}",
        f"/{KEY_STACK}|L",
        f"/{KEY_STACK}||r",  # empty LogicalResourceId
        f"/{KEY_STACK}|L|",  # empty RequestId
        f"/{KEY_STACK}|L/x|r",  # "/" in LogicalResourceId
        f"/{KEY_STACK}|L|r/x",  # "/" in RequestId
        f"/{KEY_STACK}|L|r|x",  # the last two "|" leave "L" as the StackId
        f"/x{KEY_STACK}|L|r",  # "arn:" neither at the start nor after a "/"
        f"/x|{KEY_STACK}|L|r",  # ... nor after a "|"
        "/arn:stack/s|L|r",  # ":stack/" only after "arn:"
        "/arn:x:stack|L|r",
        "/arn:x:stack/|L|r",  # nothing after ":stack/"
        "/ARN:x:stack/s|L|r",
        "/arn%3Ax%3Astack%2Fs%7CL%7Cr%FF",  # not UTF-8 once decoded
    ],
)
def test_url_key_identifiers_refuses_other_keys(path: str) -> None:
    assert url_key_identifiers(f"https://responses.example.test{path}") is None


@pytest.mark.parametrize(
    "key",
    [
        "arn:stack/" * 100_000,  # backtracked cubically in a regular expression: hours
        "/arn:" * 100_000 + ":stack/|L|r",
        "arn:" + ":stack" * 100_000 + "|L|r",
        "arn:x:stack/s" + "|" * 100_000,
    ],
)
def test_url_key_identifiers_takes_linear_time_on_hostile_keys(key: str) -> None:
    """A key of a megabyte or so takes milliseconds. The regular expression this parse once
    was took 5 s on the first key cut to 8 kB and grew with its cube: no machine passes this
    without a linear parse."""
    began = time.perf_counter()
    assert url_key_identifiers(f"https://responses.example.test/{key}") is None
    assert time.perf_counter() - began < 1.0


@pytest.mark.parametrize("value", [1, 3600, 300, 90.5, "300", " 42 ", "12.5"])
def test_valid_service_timeout(value: object) -> None:
    request = parse(event("create", ServiceTimeout=value))
    assert request.service_timeout == float(str(value).strip())


def test_null_service_timeout_is_absent() -> None:
    assert parse(event("create", ServiceTimeout=None)).service_timeout is None


# --- the response URL ----------------------------------------------------------------------

CFN_BUCKET = "cloudformation-custom-resource-response"
RESPONSE_BUCKET_URLS = [
    f"https://{CFN_BUCKET}-useast1.s3.amazonaws.com/key",
    f"https://{CFN_BUCKET}-euwest1.s3.eu-west-1.amazonaws.com/key",
    f"https://{CFN_BUCKET}-uswest2.s3-us-west-2.amazonaws.com/key",
    f"https://{CFN_BUCKET}-useast1.s3.dualstack.us-east-1.amazonaws.com/key",
    f"https://{CFN_BUCKET}-usgovwest1.s3.us-gov-west-1.amazonaws.com/key",
    f"https://{CFN_BUCKET}-cnnorth1.s3.cn-north-1.amazonaws.com.cn/key",
    f"https://{CFN_BUCKET}-euscdeeast1.s3.eusc-de-east-1.amazonaws.eu/key",
    f"https://{CFN_BUCKET}-usisoeast1.s3.us-iso-east-1.c2s.ic.gov/key",
    f"https://{CFN_BUCKET}-usisobeast1.s3.us-isob-east-1.sc2s.sgov.gov/key",
    f"https://s3.amazonaws.com/{CFN_BUCKET}-useast1/key",
    f"https://s3.cn-northwest-1.amazonaws.com.cn/{CFN_BUCKET}-cnnorthwest1/key",
    f"https://s3.eusc-de-east-1.amazonaws.eu/{CFN_BUCKET}-euscdeeast1/key",
    f"https://{CFN_BUCKET.upper()}-USEAST1.S3.AMAZONAWS.COM:443/key",
    CREATE["ResponseURL"],
]


@pytest.mark.parametrize("url", RESPONSE_BUCKET_URLS)
def test_cloudformation_response_buckets_of_every_partition_are_accepted(url: str) -> None:
    assert check_response_url(url, allowed_hosts=NO_HOSTS) is url


OTHER_S3_URLS = [
    "https://s3.amazonaws.com/bucket/key",
    "https://bucket.s3.amazonaws.com/key",
    "https://s3.eu-west-1.amazonaws.com/bucket/key",
    "https://my.bucket.s3.eu-west-1.amazonaws.com/key",
    "https://bucket.s3.cn-north-1.amazonaws.com.cn/key",
    f"https://{CFN_BUCKET}-useast1.evil.s3.amazonaws.com/key",
    f"https://{CFN_BUCKET}-useast1.s3.amazonaws.com.evil.com/key",
]


@pytest.mark.parametrize("url", OTHER_S3_URLS)
def test_other_s3_buckets_only_when_the_user_allows_them(url: str) -> None:
    """Any bucket of anyone's would otherwise receive an operation's answer (NoEcho Data
    included) from an event that names it."""
    with pytest.raises(ResponseURLRefused, match="not a CloudFormation response bucket"):
        check_response_url(url, allowed_hosts=NO_HOSTS)
    host = url.split("/")[2]
    assert check_response_url(url, allowed_hosts=frozenset({host})) is url


def test_a_response_bucket_key_naming_another_operation_is_refused() -> None:
    url = CREATE["ResponseURL"]
    ids = (STACK_ID, "DemoBucket", CREATE["RequestId"])
    assert check_response_url(url, allowed_hosts=NO_HOSTS, identifiers=ids) is url
    for other in ((STACK_ID, "Other", ids[2]), (STACK_ID, "DemoBucket", "another-request")):
        with pytest.raises(ResponseURLRefused, match="names another operation"):
            check_response_url(url, allowed_hosts=NO_HOSTS, identifiers=other)
    with pytest.raises(ResponseURLRefused, match="names another operation") as caught:
        parse(
            event(
                "create",
                ResponseURL=response_url(
                    "forged", amz_date="20261122T120000Z", signature_digit="9"
                ),
            )
        )
    assert caught.value.response_url is None  # nothing can be sent to it
    assert caught.value.echo == ECHO


NOT_A_RESPONSE_BUCKET = "is not a CloudFormation response bucket"
REFUSED_URLS: list[tuple[object, str]] = [
    (None, "ResponseURL is missing"),
    (42, "ResponseURL must be a string; got number"),
    ("", "ResponseURL is empty"),
    ("http://bucket.s3.amazonaws.com/key", "must use https"),
    ("ftp://bucket.s3.amazonaws.com/key", "must use https; got 'ftp'"),
    ("file:///etc/passwd", "no host"),
    ("javascript:alert(1)", "no host"),
    ("//bucket.s3.amazonaws.com/key", "no valid scheme"),
    ("bucket.s3.amazonaws.com/key", "no valid scheme"),
    ("https://evil.example.com/key", f"host evil.example.com {NOT_A_RESPONSE_BUCKET}"),
    ("https://s3.amazonaws.com.evil.com/key", NOT_A_RESPONSE_BUCKET),
    ("https://bucket.s3.amazonaws.com.cn.evil.com/key", NOT_A_RESPONSE_BUCKET),
    ("https://abc.execute-api.us-east-1.amazonaws.com/key", NOT_A_RESPONSE_BUCKET),
    ("https://169.254.169.254/latest/meta-data/", "link-local or instance-metadata"),
    ("http://169.254.169.254/latest/meta-data/", "link-local or instance-metadata"),
    ("https://169.254.170.2/v2/credentials", "link-local or instance-metadata"),
    ("https://[fd00:ec2::254]/latest", "link-local or instance-metadata"),
    ("https://[fe80::1]/x", "link-local or instance-metadata"),
    ("https://[::ffff:169.254.169.254]/x", "link-local or instance-metadata"),
    ("https://127.0.0.1/key", "local or IP-literal"),
    ("https://127.1.2.3:9000/key", "local or IP-literal"),
    ("https://10.0.0.1/key", "local or IP-literal"),
    ("https://[::1]/key", "local or IP-literal"),
    ("https://localhost/key", "local or IP-literal"),
    ("https://user:secret@bucket.s3.amazonaws.com/key", "user information"),
    ("https://bucket.s3.amazonaws.com@evil.com/key", "user information"),
    ("https://s3.amazonaws.com\\@evil.com/key", "cannot hold"),
    ("https://bucket.s3.amazonaws.com/a key", "cannot hold"),
    ("https://bucket.s3.amazonaws.com/key\r\nHost: evil", "cannot hold"),
    ("https://bucket.s3.amazonaws.com/ключ", "cannot hold"),
    (f"https://{CFN_BUCKET}-useast1.s3.amazonaws.com:8443/key", "port 8443 is not allowed"),
    ("https://bucket.s3.amazonaws.com:http/key", "malformed host or port"),
    ("https://[not-ipv6/key", "malformed host or port"),
    ("https://evil.com%2Es3.amazonaws.com/key", "malformed host name"),
    ("https://bucket.s3.amazonaws.com/" + "k" * 9000, "the limit is 8192"),
]


@pytest.mark.parametrize(("url", "expected"), REFUSED_URLS)
def test_bad_urls_are_refused(url: object, expected: str) -> None:
    with pytest.raises(ResponseURLRefused) as caught:
        check_response_url(url, allowed_hosts=NO_HOSTS)
    assert expected in caught.value.reason
    if isinstance(url, str) and "/" in url.split("://", 1)[-1]:
        path = url.split("://", 1)[-1].split("/", 1)[1]
        if path:
            assert path not in caught.value.reason


@pytest.mark.parametrize(("url", "expected"), REFUSED_URLS)
def test_refused_url_in_an_event_keeps_the_echo(url: object, expected: str) -> None:
    raw = event("create", ResponseURL=url) if url is not None else event("create")
    if url is None:
        raw.pop("ResponseURL")
    with pytest.raises(ResponseURLRefused) as caught:
        parse(raw)
    assert expected in caught.value.reason
    assert caught.value.echo == parse(event("create")).echo
    assert caught.value.response_url is None


def test_refused_url_reason_also_names_other_problems() -> None:
    with pytest.raises(ResponseURLRefused) as caught:
        parse(event("create", ResponseURL="https://evil.com/x", RequestType="Nope"))
    assert NOT_A_RESPONSE_BUCKET in caught.value.reason
    assert "RequestType must be one of" in caught.value.reason


ALLOWED = frozenset({"127.0.0.1:9000", "localhost", "receiver.test:8080", "[::1]:9001"})


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9000/bucket/key?X-Amz-Date=1",
        "https://127.0.0.1:9000/bucket/key",
        "http://localhost/key",
        "http://localhost:1234/key",
        "http://receiver.test:8080/key",
        "http://[::1]:9001/key",
    ],
)
def test_allowed_hosts_may_use_http(url: str) -> None:
    assert check_response_url(url, allowed_hosts=ALLOWED) is url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:9001/key", "must use https"),
        ("http://127.0.0.1/key", "must use https"),
        ("https://127.0.0.1:9001/key", "local or IP-literal"),
        ("http://receiver.test/key", "must use https"),
        ("http://user@localhost/key", "user information"),
        ("ftp://localhost/key", "must use https"),
    ],
)
def test_allow_list_is_exact(url: str, expected: str) -> None:
    with pytest.raises(ResponseURLRefused, match=expected):
        check_response_url(url, allowed_hosts=ALLOWED)


def test_metadata_hosts_stay_refused_even_when_allowed() -> None:
    allowed = frozenset({"169.254.169.254", "[fd00:ec2::254]", "169.254.169.254:80"})
    for url in ("http://169.254.169.254/latest", "http://[fd00:ec2::254]/latest"):
        with pytest.raises(ResponseURLRefused, match="instance-metadata"):
            check_response_url(url, allowed_hosts=allowed)


def test_allowed_hosts_from_env() -> None:
    environ = {"ASYNCCFN_ALLOWED_RESPONSE_HOSTS": " LocalHost:4566 , ,127.0.0.1,  "}
    assert allowed_hosts_from_env(environ) == frozenset({"localhost:4566", "127.0.0.1"})
    assert allowed_hosts_from_env({}) == frozenset()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (CREATE["ResponseURL"], "https://cloudformation-custom-resource-response-useast1"),
        ("http://user:pw@127.0.0.1:9000/k?Signature=x", "http://127.0.0.1:9000"),
        ("HTTPS://Bucket.S3.amazonaws.com/k", "https://bucket.s3.amazonaws.com"),
        ("https://[::1]:8443/k", "https://[::1]:8443"),
        ("not a url at all", "<unparseable URL>"),
        ("https://[bad/k", "<unparseable URL>"),
    ],
)
def test_describe_url_keeps_only_scheme_and_host(url: str, expected: str) -> None:
    described = describe_url(url)
    assert described.startswith(expected)
    assert "?" not in described
    assert "/k" not in described
    assert "pw" not in described


# --- the response body ---------------------------------------------------------------------


def success(**changes: Any) -> Response:
    fields: dict[str, Any] = {"status": Status.SUCCESS, "physical_id": "demo-bucket"}
    fields.update(changes)
    return Response(**fields)


def failed(**changes: Any) -> Response:
    fields: dict[str, Any] = {"status": Status.FAILED, "physical_id": "demo-bucket"}
    fields.update(changes)
    return Response(**fields)


def test_success_body_is_exactly_what_cloudformation_expects() -> None:
    body = build_body(success(data={"Arn": "arn:aws:s3:::demo-bucket"}), ECHO)
    assert body == (
        b'{"Status":"SUCCESS","PhysicalResourceId":"demo-bucket",'
        b'"StackId":"' + STACK_ID.encode() + b'",'
        b'"RequestId":"0f5f0c1e-0d8e-4c1b-9a53-0c6a2f6f1f11",'
        b'"LogicalResourceId":"DemoBucket","NoEcho":false,'
        b'"Data":{"Arn":"arn:aws:s3:::demo-bucket"}}'
    )


def test_failed_body_carries_its_reason() -> None:
    body = decoded(build_body(failed(reason="bucket exists"), ECHO))
    assert body["Status"] == "FAILED"
    assert body["Reason"] == "bucket exists"
    assert body["PhysicalResourceId"] == "demo-bucket"
    assert "Data" not in body


@pytest.mark.parametrize("reason", [None, ""])
def test_failed_body_always_has_a_reason(reason: str | None) -> None:
    body = decoded(build_body(failed(reason=reason), ECHO))
    assert body["Reason"] == "the handler failed without giving a reason"


def test_no_echo_is_sent() -> None:
    body = decoded(build_body(success(data={"Password": "hunter2"}, no_echo=True), ECHO))
    assert body["NoEcho"] is True
    assert body["Data"] == {"Password": "hunter2"}


def test_response_repr_masks_no_echo_data() -> None:
    assert "hunter2" not in repr(success(data={"Password": "hunter2"}, no_echo=True))
    assert "hunter2" not in repr(success(data=["hunter2"], no_echo=True))
    assert "hunter2" in repr(success(data={"Password": "hunter2"}))


def test_mask_no_echo() -> None:
    assert mask_no_echo({"Password": "hunter2", "Port": 5432}) == {
        "Password": "****",
        "Port": "****",
    }


def test_oversize_reason_is_truncated_to_exactly_the_limit() -> None:
    body = build_body(failed(reason="x" * 10_000), ECHO)
    assert len(body) == MAX_BODY_BYTES
    reason = decoded(body)["Reason"]
    assert reason.endswith(TRUNCATION_MARKER)
    assert reason.startswith("x" * 100)


def test_huge_reason_is_cheap_and_truncated() -> None:
    body = build_body(failed(reason="y" * 10_000_000), ECHO)
    assert len(body) == MAX_BODY_BYTES


@pytest.mark.parametrize("char", ["é", "€", "😀", "\x01", '"'])
def test_reason_is_counted_in_utf8_bytes(char: str) -> None:
    body = build_body(failed(reason=char * 5000), ECHO)
    # A multi-byte character (or JSON escape) that would straddle the limit is left out.
    assert MAX_BODY_BYTES - 6 < len(body) <= MAX_BODY_BYTES
    assert decoded(body)["Reason"].endswith(TRUNCATION_MARKER)


def test_long_success_reason_is_truncated_and_success_kept() -> None:
    body = decoded(build_body(success(reason="r" * 5000, data={"A": "b" * 1000}), ECHO))
    assert body["Status"] == "SUCCESS"
    assert body["Data"] == {"A": "b" * 1000}
    assert body["Reason"].endswith(TRUNCATION_MARKER)


def test_oversize_data_fails_naming_the_sizes() -> None:
    data = {"Blob": "z" * 5000}
    raw = build_body(success(data=data), ECHO)
    body = decoded(raw)
    assert body["Status"] == "FAILED"
    assert "Data" not in body
    data_bytes = len(json.dumps(data, separators=(",", ":")).encode())
    assert f"Data is {data_bytes} bytes" in body["Reason"]
    assert "4096" in body["Reason"]
    assert body["PhysicalResourceId"] == "demo-bucket"


def test_oversize_multibyte_data_counts_bytes() -> None:
    data = {"Text": "é" * 1950}  # 1,950 characters but 3,900 bytes: too large with the rest
    body = decoded(build_body(success(data=data), ECHO))
    assert body["Status"] == "FAILED"
    assert "Data is 3911 bytes" in body["Reason"]


def test_data_that_just_fits_is_kept() -> None:
    base = len(build_body(success(data={"A": ""}), ECHO))
    data = {"A": "q" * (MAX_BODY_BYTES - base)}
    body = build_body(success(data=data), ECHO)
    assert len(body) == MAX_BODY_BYTES
    assert decoded(body)["Data"] == data
    over = decoded(build_body(success(data={"A": "q" * (MAX_BODY_BYTES - base + 1)}), ECHO))
    assert over["Status"] == "FAILED"


def test_failed_response_with_oversize_data_keeps_its_reason() -> None:
    body = decoded(build_body(failed(reason="boom", data={"Blob": "z" * 5000}), ECHO))
    assert body["Status"] == "FAILED"
    assert body["Reason"] == "boom"
    assert "Data" not in body


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (["a"], "Data must be a JSON object; got array"),
        ("text", "Data must be a JSON object; got string"),
        (42, "Data must be a JSON object; got number"),
        ({1: "a"}, "Data keys must be strings; got number"),
        ({"When": object()}, "Data is not JSON-serialisable"),
        ({"Set": {1, 2}}, "Data is not JSON-serialisable"),
        ({"Nan": float("nan")}, "Data is not JSON-serialisable"),
        ({"Bad": "\ud800"}, "Data is not JSON-serialisable"),
    ],
)
def test_invalid_data_becomes_an_honest_failure(data: Any, expected: str) -> None:
    body = decoded(build_body(success(data=data), ECHO))
    assert body["Status"] == "FAILED"
    assert expected in body["Reason"]
    assert "Data" not in body


def test_circular_data_becomes_an_honest_failure() -> None:
    data: dict[str, Any] = {}
    data["self"] = data
    body = decoded(build_body(success(data=data), ECHO))
    assert body["Status"] == "FAILED"
    assert "Data is not JSON-serialisable" in body["Reason"]


def test_invalid_data_on_a_failure_is_dropped() -> None:
    body = decoded(build_body(failed(reason="boom", data=["x"]), ECHO))
    assert body["Reason"] == "boom"
    assert "Data" not in body


def test_nested_data_and_non_string_values_pass() -> None:
    data = {"Port": 5432, "Endpoints": ["a", "b"], "Nested": {"Enabled": True}}
    assert decoded(build_body(success(data=data), ECHO))["Data"] == data


def test_body_is_deterministic() -> None:
    one = build_body(success(data={"B": "2", "A": {"y": 1, "x": 2}}, reason="ok"), ECHO)
    two = build_body(success(data={"A": {"x": 2, "y": 1}, "B": "2"}, reason="ok"), ECHO)
    assert one == two
    assert one == build_body(success(data={"B": "2", "A": {"y": 1, "x": 2}}, reason="ok"), ECHO)


@pytest.mark.parametrize("physical_id", ["p" * 1024, "é" * 512, "😀" * 256])
def test_physical_id_of_1kb_is_accepted(physical_id: str) -> None:
    assert len(physical_id.encode()) == MAX_PHYSICAL_ID_BYTES
    body = decoded(build_body(success(physical_id=physical_id), ECHO))
    assert body["Status"] == "SUCCESS"
    assert body["PhysicalResourceId"] == physical_id


@pytest.mark.parametrize(
    ("physical_id", "expected"),
    [
        ("p" * 1025, "PhysicalResourceId is 1025 bytes; the limit is 1024"),
        ("é" * 513, "PhysicalResourceId is 1026 bytes; the limit is 1024"),
        ("", "PhysicalResourceId is empty"),
        (None, "PhysicalResourceId must be a string; got null"),
        ("\udc80", "not valid Unicode text"),
    ],
)
def test_invalid_physical_id_fails_with_a_safe_fallback(physical_id: Any, expected: str) -> None:
    body = decoded(build_body(success(physical_id=physical_id, data={"A": "b"}), ECHO))
    assert body["Status"] == "FAILED"
    assert expected in body["Reason"]
    assert is_failed_create_marker(body["PhysicalResourceId"])
    assert "Data" not in body
    with_fallback = decoded(
        build_body(success(physical_id=physical_id), ECHO, fallback_physical_id="old-id")
    )
    assert with_fallback["PhysicalResourceId"] == "old-id"


@pytest.mark.parametrize("physical_id", ["", "p" * 2000])
def test_failed_with_unusable_physical_id_uses_the_fallback(physical_id: str) -> None:
    body = decoded(build_body(failed(physical_id=physical_id, reason="boom"), ECHO))
    assert body["Reason"] == "boom"
    assert body["PhysicalResourceId"] == FAILED_CREATE_MARKER_PREFIX + body[
        "PhysicalResourceId"
    ].removeprefix(FAILED_CREATE_MARKER_PREFIX)
    assert is_failed_create_marker(body["PhysicalResourceId"])
    unusable_fallback = decoded(
        build_body(failed(physical_id=physical_id, reason="boom"), ECHO, fallback_physical_id="")
    )
    assert is_failed_create_marker(unusable_fallback["PhysicalResourceId"])


def test_physical_id_that_escapes_too_large_fails() -> None:
    physical_id = "\x01" * 1024  # 1 KB of text, but 6 KB as JSON escapes
    body = decoded(build_body(success(physical_id=physical_id), ECHO))
    assert body["Status"] == "FAILED"
    assert "PhysicalResourceId takes 6146 bytes as JSON" in body["Reason"]
    assert is_failed_create_marker(body["PhysicalResourceId"])


def test_lone_surrogates_in_reason_do_not_break_the_body() -> None:
    body = decoded(build_body(failed(reason="bad \ud800 text"), ECHO))
    assert body["Reason"].startswith("bad ")


def test_parsed_echo_always_fits_a_body() -> None:
    raw = event(
        "create",
        StackId="s" * 1022,
        RequestId="r" * 254,
        LogicalResourceId="\x01" * 42,
    )
    request = parse(raw)
    body = decoded(build_body(failed(physical_id="p" * 1024, reason="x" * 9000), request.echo))
    assert body["StackId"] == "s" * 1022
    assert body["PhysicalResourceId"] == "p" * 1024


JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    status=st.sampled_from(Status),
    physical_id=st.one_of(st.text(max_size=1100), st.just(""), st.none()),
    reason=st.one_of(st.none(), st.text(max_size=6000)),
    data=st.one_of(
        st.none(),
        JSON_VALUES,
        st.dictionaries(st.text(max_size=20), st.text(max_size=3000), max_size=4),
    ),
    no_echo=st.booleans(),
)
def test_every_body_is_valid(
    status: Status, physical_id: Any, reason: str | None, data: Any, no_echo: bool
) -> None:
    response = Response(
        status=status, physical_id=physical_id, reason=reason, data=data, no_echo=no_echo
    )
    raw = build_body(response, ECHO)
    assert raw == build_body(response, ECHO)
    body = decoded(raw)
    assert body["Status"] in ("SUCCESS", "FAILED")
    assert body["StackId"] == ECHO.stack_id
    assert body["RequestId"] == ECHO.request_id
    assert body["LogicalResourceId"] == ECHO.logical_id
    assert body["NoEcho"] is no_echo
    assert 0 < len(body["PhysicalResourceId"].encode()) <= MAX_PHYSICAL_ID_BYTES
    if body["Status"] == "FAILED":
        assert body["Reason"]
    else:
        assert status is Status.SUCCESS
        assert body["PhysicalResourceId"] == physical_id
        if data is not None:
            assert isinstance(body["Data"], dict)


# --- failed-create markers -----------------------------------------------------------------


def test_failed_create_marker_is_stable_per_request() -> None:
    request = parse(event("create"))
    marker = failed_create_physical_id(request)
    assert marker.startswith(FAILED_CREATE_MARKER_PREFIX)
    assert len(marker.encode()) <= MAX_PHYSICAL_ID_BYTES
    assert is_failed_create_marker(marker)
    new_attempt = parse(
        event(
            "create",
            ResponseURL=response_url(
                CREATE["RequestId"], amz_date="20261123T000000Z", signature_digit="7"
            ),
        )
    )
    assert failed_create_physical_id(new_attempt) == marker
    other = parse(event("create", RequestId="another-request"))
    assert failed_create_physical_id(other) != marker
    assert failed_create_physical_id(parse(event("create"))) == marker
    assert failed_create_physical_id(request.echo) == marker
    malformed = refusal(event("create", ResourceType="Bucket"))
    assert malformed.echo is not None
    assert failed_create_physical_id(malformed.echo) == marker


@pytest.mark.parametrize(
    "physical_id",
    [None, "", "demo-bucket", FAILED_CREATE_MARKER_PREFIX, FAILED_CREATE_MARKER_PREFIX + "xyz"],
)
def test_other_ids_are_not_markers(physical_id: str | None) -> None:
    assert not is_failed_create_marker(physical_id)


def test_failure_physical_id_for_create() -> None:
    request = parse(event("create"))
    assert failure_physical_id(request, "built-bucket") == "built-bucket"
    assert failure_physical_id(request, None) == failed_create_physical_id(request)
    assert failure_physical_id(request, "") == failed_create_physical_id(request)
    assert failure_physical_id(request, "p" * 1025) == failed_create_physical_id(request)


@pytest.mark.parametrize("kind", ["update", "delete"])
def test_failure_physical_id_echoes_update_and_delete(kind: str) -> None:
    request = parse(event(kind))
    assert failure_physical_id(request, None) == "demo-bucket"
    assert failure_physical_id(request, "new-bucket") == "demo-bucket"


def test_delete_carrying_a_marker_parses() -> None:
    marker = failed_create_physical_id(parse(event("create")))
    request = parse(event("delete", PhysicalResourceId=marker))
    assert is_failed_create_marker(request.physical_id)


# --- parse_request never raises anything else ----------------------------------------------

FIELDS = [
    "RequestType",
    "ServiceToken",
    "ResponseURL",
    "StackId",
    "RequestId",
    "ResourceType",
    "LogicalResourceId",
    "PhysicalResourceId",
    "ResourceProperties",
    "OldResourceProperties",
    "ServiceTimeout",
]


def check_outcome(raw: object) -> None:
    try:
        request = parse(raw)
    except RequestError as exc:
        assert exc.reason
        assert exc.response_url is None or isinstance(exc.response_url, str)
        for secret in url_secrets(CREATE["ResponseURL"]):
            assert secret not in exc.reason
    else:
        assert isinstance(request, Request)


@settings(max_examples=300)
@given(JSON_VALUES)
def test_arbitrary_json_is_parsed_or_refused(raw: Any) -> None:
    check_outcome(raw)


@settings(max_examples=500)
@given(
    kind=st.sampled_from(sorted(EVENTS)),
    changes=st.dictionaries(
        st.sampled_from(FIELDS), st.one_of(st.just(MISSING), JSON_VALUES), max_size=4
    ),
)
def test_mutated_events_are_parsed_or_refused(kind: str, changes: dict[str, Any]) -> None:
    check_outcome(event(kind, **changes))


@settings(max_examples=200)
@given(url=st.text(max_size=200), host=st.text(max_size=30))
def test_arbitrary_urls_are_checked_or_refused(url: str, host: str) -> None:
    for candidate in (url, f"https://{host}/{url}", f"http://{url}"):
        try:
            checked = check_response_url(candidate, allowed_hosts=frozenset({"localhost"}))
        except ResponseURLRefused as exc:
            assert exc.reason
        else:
            assert checked is candidate
        assert "/" not in describe_url(candidate).split("://", 1)[-1]


def test_noecho_data_never_shows_in_the_reason() -> None:
    secret = "hunter2-hunter2-hunter2"
    response = Response(
        status=Status.FAILED,
        physical_id="p",
        reason=f"could not rotate {secret} (was {{'Password': {secret!r}}})",
        data={"Password": secret},
        no_echo=True,
    )
    body = decoded(build_body(response, ECHO))
    assert secret not in body["Reason"] and "could not rotate ****" in body["Reason"]
    shown = decoded(build_body(response.replaced(no_echo=False), ECHO))
    assert secret in shown["Reason"]  # without NoEcho the handler's reason stands as given


def test_masked_body_masks_noecho_data_only() -> None:
    secret_body = build_body(
        Response(status=Status.SUCCESS, physical_id="p", data={"K": "v1"}, no_echo=True), ECHO
    )
    masked = json.loads(masked_body(secret_body) or "{}")
    assert masked == {**json.loads(secret_body), "Data": {"K": MASK}}
    plain = build_body(Response(status=Status.SUCCESS, physical_id="p", data={"K": "v"}), ECHO)
    assert masked_body(plain) is None and masked_body(b"not json") is None


def test_url_secrets_are_the_url_and_its_signatures_raw_and_decoded() -> None:
    from asynccfn._redact import Redactor
    from asynccfn._urls import url_secrets

    v4 = (
        "https://bucket.s3.amazonaws.com/key?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Date=20261204T000000Z&X-Amz-Signature=abc123def"
    )
    assert url_secrets(v4) == [v4, "abc123def", "abc123def"]
    v2 = "https://bucket.s3.amazonaws.com/key?AWSAccessKeyId=AKIA&Expires=1&Signature=a%2Bb%3D"
    assert url_secrets(v2) == [v2, "a%2Bb%3D", "a+b="]
    masked = Redactor(url_secrets(v2)).text(f"PUT {v2} failed; signature a+b= refused")
    assert masked == "PUT **** failed; signature **** refused"
    assert url_secrets("https://bucket/key") == ["https://bucket/key"]
    # A name percent-encoded (S3 decodes it), and a fragment after the signature.
    odd = "https://bucket.s3.amazonaws.com/key?X-Amz-Date=1&X%2DAmz%2DSignature=f00d#frag"
    assert url_secrets(odd) == [odd, "f00d", "f00d"]


def test_a_follower_tells_a_noecho_answer_kept_masked_from_one_it_can_copy() -> None:
    from asynccfn._follow import _masked
    from asynccfn._response import masked_body

    stack = "arn:aws:cloudformation:us-east-1:1:stack/s/1"
    echo = Echo(stack_id=stack, request_id="r", logical_id="L")
    secret = build_body(
        Response(status=Status.SUCCESS, physical_id="p", data={"Password": "pw"}, no_echo=True),
        echo,
    ).decode()
    plain = build_body(Response(status=Status.SUCCESS, physical_id="p", data={"A": "1"}), echo)
    kept = masked_body(secret)
    assert kept is not None and _masked(kept)  # posted: only the mask is left
    assert not _masked(secret) and not _masked(plain.decode())
