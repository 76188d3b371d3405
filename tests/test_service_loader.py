"""The runtime's clients load service models without listing every service first, and load
the same models botocore's own loader does (search paths, extras, unknown names)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.exceptions import UnknownServiceError
from botocore.loaders import Loader

from asynccfn._clients import ClientPool
from asynccfn._service_loader import ServiceLoader, use_service_loader
from tests.support import run


class CountingLoader(ServiceLoader):
    listed = 0

    def list_available_services(self, type_name: str) -> Any:
        type(self).listed += 1
        return super().list_available_services(type_name)


@pytest.mark.parametrize(
    ("service", "type_name"),
    [
        ("dynamodb", "service-2"),
        ("lambda", "service-2"),
        ("lambda", "paginators-1"),  # has sdk extras
        ("dynamodb", "endpoint-rule-set-1"),
    ],
)
def test_models_are_botocores_own_and_no_service_list_is_made(service: str, type_name: str) -> None:
    CountingLoader.listed = 0
    ours = CountingLoader().load_service_model(service, type_name)
    assert ours == Loader().load_service_model(service, type_name)
    assert CountingLoader.listed == 0


def test_an_unknown_service_is_refused_as_botocore_refuses_it() -> None:
    for name in ("dynamodbx", "../dynamodb", "DynamoDB"):
        with pytest.raises(UnknownServiceError, match="Unknown service"):
            ServiceLoader().load_service_model(name, "service-2")


def test_a_model_on_aws_data_path_is_found_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    builtin = Loader().load_service_model("dynamodb", "service-2")
    custom = {**builtin, "documentation": "a model of our own"}
    folder = tmp_path / "dynamodb" / builtin["metadata"]["apiVersion"]
    folder.mkdir(parents=True)
    (folder / "service-2.json").write_text(json.dumps(custom))
    monkeypatch.setenv("AWS_DATA_PATH", str(tmp_path))
    session = botocore.session.get_session()
    use_service_loader(session)
    loaded = session.get_component("data_loader").load_service_model("dynamodb", "service-2")
    assert loaded["documentation"] == "a model of our own"


def test_the_runtimes_clients_use_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    pool = ClientPool()

    async def scenario() -> Any:
        try:
            client = await pool.get("dynamodb")
            return client.meta.service_model.service_name, pool._session
        finally:
            await pool.close()

    name, session = run(scenario())
    assert name == "dynamodb"
    assert isinstance(session.get_component("data_loader"), ServiceLoader)
