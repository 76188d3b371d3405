"""Inside Lambda, ``lambda_entry`` prepares the clients with the collector paused, then freezes
what the init phase made (asynccfn._entry._prepare_during_init): the collector is as the
user's code left it afterwards, and the init phase's objects are out of its reach."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

import asynccfn
from asynccfn import _entry
from tests.support import answering_resource, closing_handler


@pytest.fixture
def inside_lambda(monkeypatch: pytest.MonkeyPatch, journal: str) -> Iterator[str]:
    monkeypatch.setattr(_entry, "inside_lambda", lambda: True)  # as Lambda sets it up
    gc.unfreeze()
    yield journal
    gc.unfreeze()
    gc.enable()


def test_the_init_phase_objects_are_frozen_and_the_collector_runs_again(inside_lambda: str) -> None:
    paused: list[bool] = []
    gc.callbacks.append(collected := lambda phase, info: paused.append(phase == "start"))
    gc.collect()
    try:
        handler = asynccfn.lambda_entry(answering_resource(), journal=inside_lambda)
    finally:
        gc.callbacks.remove(collected)
    with closing_handler(handler):
        assert handler.runtime.clients.services() == {"dynamodb"}  # prepared meanwhile
        # loading the models (about 100,000 objects) collected none; what lambda_entry does
        # before it may have collected once
        assert sum(paused) <= 1, sum(paused)
        assert gc.isenabled()
        assert gc.get_freeze_count() > 10_000  # botocore's models, among the rest


def test_a_collector_the_user_turned_off_stays_off(inside_lambda: str) -> None:
    gc.disable()
    handler = asynccfn.lambda_entry(answering_resource(), journal=inside_lambda)
    with closing_handler(handler):
        assert not gc.isenabled()


def test_off_lambda_nothing_is_frozen(journal: str) -> None:
    gc.unfreeze()
    handler = asynccfn.lambda_entry(answering_resource(), journal=journal)
    with closing_handler(handler):
        assert gc.get_freeze_count() == 0 and gc.isenabled()
