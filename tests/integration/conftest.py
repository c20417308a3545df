# SPDX-License-Identifier: Apache-2.0
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from lab import Lab, Node  # noqa: E402

BIN_DIR = os.environ.get("BERTH_BIN_DIR",
                         os.path.join(os.path.dirname(__file__), "..", "..", "build"))


def pytest_sessionstart(session):
    if os.geteuid() != 0:
        pytest.exit("berth's integration tests need root (network namespaces)", returncode=2)
    Lab.sweep()


@pytest.fixture
def lab():
    lab = Lab(os.path.abspath(BIN_DIR))
    try:
        yield lab
    finally:
        lab.close()
    if lab.reports:
        pytest.fail("sanitizer report from a berth daemon:\n" + "\n".join(lab.reports))


@pytest.fixture
def fabric(lab):
    """The VPC subnet's far side: an address on the node's uplink, a peer to talk to."""
    return lab.netns("f")


NODE_ADDR = "198.18.0.10"
FABRIC_ADDR = "198.18.0.1"
POOL = "198.18.1.0/28"


@pytest.fixture
def make_node(lab, fabric):
    """make_node(pool=..., agent_args=[...]): a node on the fabric running an agent."""
    def make(pool=POOL, agent_args=("--cooldown", "30"), start=True):
        n = Node(lab, fabric, NODE_ADDR, pool, fabric_addr=FABRIC_ADDR)
        n.ns.run("ip", "route", "add", "default", "via", FABRIC_ADDR)
        # The VPC delivers the pool's addresses to the node that owns them.
        for cidr in pool.split(","):
            fabric.run("ip", "route", "add", cidr.split("@")[0], "via", NODE_ADDR)
        if start:
            n.start_agent(*agent_args)
        return n
    return make


@pytest.fixture
def node(make_node):
    return make_node()
