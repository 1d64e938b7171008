"""Hosts for end-to-end tests: ``emgflow.tools.netns.TwoHosts`` as a fixture, skipped with the reason
where ``ip netns add`` fails (not root, no iproute2)."""

from __future__ import annotations

from typing import Iterator

import pytest

from emgflow.tools.netns import TwoHosts


@pytest.fixture
def two_hosts() -> Iterator[TwoHosts]:
    hosts = TwoHosts()
    try:
        try:
            hosts.up()
        except OSError as exc:
            pytest.skip(f"cannot build network namespaces here ({exc}): these tests need root and `ip netns`")
        yield hosts
    finally:
        hosts.down()
