"""botocore's data loader, without the listing of every service before each model it loads.

botocore's ``Loader.load_service_model`` first lists the directories of all ~400 services in
every search path (about 2,700 ``stat`` calls, 10-20 ms of a cold start) only to learn
whether the one it was asked for exists. :class:`ServiceLoader` looks in that service's own
directory; a name it does not find there goes botocore's way, so an unknown service still
raises ``UnknownServiceError`` naming the known ones. Search paths (``AWS_DATA_PATH``,
``~/.aws/models``) and extras are botocore's. Imported only when the first client is made.
"""

from __future__ import annotations

import os
import re
from typing import Any

from botocore.exceptions import DataNotFoundError
from botocore.loaders import Loader, instance_cache

__all__ = ["ServiceLoader", "use_service_loader"]

_SERVICE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")


class ServiceLoader(Loader):
    @instance_cache
    def load_service_model(
        self, service_name: str, type_name: str, api_version: str | None = None
    ) -> Any:
        if not _SERVICE_NAME.match(service_name):
            return super().load_service_model(service_name, type_name, api_version)
        try:
            version = api_version or self.determine_latest_version(service_name, type_name)
            model = self.load_data(os.path.join(service_name, version, type_name))
        except DataNotFoundError:
            return super().load_service_model(service_name, type_name, api_version)
        private: Any = self  # botocore's own helpers, which its stubs leave out
        private._extras_processor.process(
            model, private._find_extras(service_name, type_name, version)
        )
        return model


def use_service_loader(session: Any) -> None:
    """Make ``session`` (a botocore or aiobotocore session) load models with a
    :class:`ServiceLoader` over the search paths its own loader would have had."""
    configured = session.get_config_variable("data_path")
    paths = (
        [os.path.expanduser(os.path.expandvars(p)) for p in configured.split(os.pathsep)]
        if configured
        else None
    )
    session.register_component("data_loader", ServiceLoader(extra_search_paths=paths))
