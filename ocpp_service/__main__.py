"""`python -m ocpp_service`: the OCPP service, configured from the environment (docs/configuration.md)."""

from __future__ import annotations

import asyncio
import logging
import sys

from grid_common.long_lived import freeze_after_full_collections
from grid_common.settings import ConfigError
from ocpp_service.config import OcppConfig
from ocpp_service.registry import RegistryError
from ocpp_service.server import Service


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("websockets").setLevel(logging.WARNING)
    logging.getLogger("ocpp").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        service = Service(OcppConfig.from_env())
    except (ConfigError, RegistryError) as error:
        sys.exit(str(error))
    freeze_after_full_collections()  # thousands of chargers' objects, walked by every full collection otherwise
    asyncio.run(service.run())


if __name__ == "__main__":
    main()
