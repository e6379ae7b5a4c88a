"""The opt-in tier: the provider against a real cluster, when ``KUBECONFIG`` is set.

    KUBECONFIG=~/.kube/config python -m pytest tests/providers/test_real_cluster.py

It only reads (list and watch), as the deployed gateway does.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from traefikservice_asgi.config import Config
from traefikservice_asgi.providers.kubernetes import Connection, KubernetesProvider

pytestmark = pytest.mark.skipif(
    not os.environ.get("KUBECONFIG"), reason="KUBECONFIG is not set (no real cluster here)"
)


def test_provider_loads_a_configuration_from_a_real_cluster() -> None:
    path = Path(os.environ["KUBECONFIG"].split(os.pathsep)[0]).expanduser()
    configs: list[Config] = []

    async def main() -> None:
        provider = KubernetesProvider(Connection.from_kubeconfig(path), configs.append)
        task = asyncio.create_task(provider.run())
        try:
            for _ in range(300):  # bounded: 30 s
                if configs:
                    return
                await asyncio.sleep(0.1)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    asyncio.run(main())
    assert configs, "no configuration within 30 s"
