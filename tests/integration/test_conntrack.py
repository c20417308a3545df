# SPDX-License-Identifier: Apache-2.0
"""UDP conntrack cleanup, judged by packets: a UDP client that keeps sending
from one source port keeps its conntrack entry, and with it the DNAT of its
first packet. When the endpoint it was sent to is removed, or when the
frontend had no endpoint at all then, the proxy must delete the entry (over
ctnetlink) so that the client's next packet is steered by the current rules.
Without the cleanup these tests fail: the entry outlives the change for as
long as the client keeps sending (the conntrack checks below show it).

Runs in ProxyLab (test_proxy.py): a node with berth-agent, pods be-a and
be-b and a remote endpoint answering UDP 5353 with their names.
"""
import json
import os
import sys
import time

import pytest

from lab import wait_for
from test_proxy import NODE, NODE_IP, REMOTE_IP, WEB, ProxyLab, eps, port, svc

# A client sending a datagram every 100 ms from a fixed source port, on a
# connected socket (so an ICMP port unreachable shows as "refused").
# One line per attempt: "<unix time> reply <name>" | "<unix time> timeout|refused".
CLIENT = r"""
import socket, sys, time
host, port, sport, secs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", sport))
s.connect((host, port))
s.settimeout(0.1)
end = time.monotonic() + secs
while time.monotonic() < end:
    t = time.monotonic()
    try:
        s.send(b"hello")
        out = "reply " + s.recv(2048).decode().split()[0]
    except socket.timeout:
        out = "timeout"
    except ConnectionRefusedError:
        out = "refused"
    print(f"{time.time():.3f} {out}", flush=True)
    time.sleep(max(0.0, 0.1 - (time.monotonic() - t)))
"""

# One datagram from each of several source ports, each waiting for its reply.
BURST = r"""
import socket, sys
host, port, first, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
for sport in range(first, first + n):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", sport))
    s.settimeout(1.0)
    s.sendto(b"hello", (host, port))
    try:
        print(sport, s.recv(2048).decode().split()[0], flush=True)
    except socket.timeout:
        print(sport, "timeout", flush=True)
    s.close()
"""


class Client:
    """A CLIENT process in namespace ns; its lines land in a file of the lab."""

    def __init__(self, plab, ns, host, port_, sport, seconds=20):
        self.path = os.path.join(plab.lab.tmp, f"udp-client-{sport}.out")
        with open(self.path, "w") as out:
            self.proc = plab.lab.track(ns.popen(sys.executable, "-c", CLIENT, host, str(port_),
                                                str(sport), str(seconds), stdout=out))

    def lines(self, since=0.0):
        with open(self.path) as f:
            rows = [line.split() for line in f if line.endswith("\n")]
        return [(float(r[0]), r[-1] if r[1] == "reply" else r[1]) for r in rows
                if float(r[0]) >= since]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=5)


def conntrack_udp(ns, dport):
    """The node's UDP entries with original destination port dport, parsed.

    Each: {"src", "dst", "sport", "dport", "reply_src", "reply_sport", "id"}.
    """
    out = ns.run("conntrack", "-L", "-p", "udp", "--orig-port-dst", str(dport), "-o", "id",
                 check=False).stdout
    entries = []
    for line in out.splitlines():
        kv = [t.split("=", 1) for t in line.split() if "=" in t]
        first, second = {}, {}
        for k, v in kv:
            (second if k in first else first)[k] = v
        if "src" in second:
            entries.append({"src": first["src"], "dst": first["dst"], "sport": int(first["sport"]),
                            "dport": int(first["dport"]), "reply_src": second["src"],
                            "reply_sport": int(second["sport"]), "id": first.get("id")})
    return entries


def edit_manifests(plab, edit):
    path = os.path.join(plab.mdir, "services.json")
    with open(path) as f:
        objs = json.load(f)
    edit(objs["items"])
    with open(path + ".tmp", "w") as f:
        json.dump(objs, f)
    os.rename(path + ".tmp", path)


@pytest.fixture
def plab(lab):
    return ProxyLab(lab, "nftables")


def test_removed_endpoint_flows_move_on(plab):
    ip_of = {"be-a": plab.ip("be-a"), "be-b": plab.ip("be-b"), "remote": REMOTE_IP}
    node = plab.node.ns
    # Flows from other source ports, spread over the endpoints: only those to the
    # removed endpoint may go.
    burst = plab.pods["client"].ns.run(sys.executable, "-c", BURST, WEB, "53", "41000", "16")
    others = dict(line.split() for line in burst.stdout.splitlines())
    assert set(others.values()) <= set(ip_of), others

    client = Client(plab, plab.pods["client"].ns, WEB, 53, 40053)

    def first_replies():
        names = [n for _, n in client.lines() if n in ip_of]
        return names[:5] if len(names) >= 5 else None
    got = wait_for(first_replies, timeout=10, what="the UDP client's first replies")
    # conntrack pins the flow: every reply comes from the first endpoint.
    assert len(set(got)) == 1, got
    gone = got[0]
    before = {e["sport"]: e for e in conntrack_udp(node, 53) if e["dst"] == WEB}
    assert before[40053]["reply_src"] == ip_of[gone], before[40053]

    def drop(items):
        for o in items:
            if o["kind"] == "EndpointSlice" and o["metadata"]["name"] == "web-1":
                o["endpoints"] = [e for e in o["endpoints"] if e["addresses"][0] != ip_of[gone]]
    t0 = time.time()
    edit_manifests(plab, drop)

    # Within a couple of seconds the same source port reaches a remaining endpoint.
    moved = wait_for(lambda: [(t, n) for t, n in client.lines(t0) if n in ip_of and n != gone],
                     timeout=3, what=f"the client's flow to leave {gone}")
    switched = moved[0][0]
    time.sleep(0.5)
    after = [n for _, n in client.lines(switched)]
    assert after and all(n in ip_of and n != gone for n in after), after
    client.stop()

    # The kernel's view: no entry to the web frontend leads to the removed endpoint,
    # and those to the remaining endpoints are the very same entries as before.
    now = {e["sport"]: e for e in conntrack_udp(node, 53) if e["dst"] == WEB}
    assert not [e for e in now.values() if e["reply_src"] == ip_of[gone]], now
    assert now[40053]["reply_src"] != ip_of[gone]
    kept = {sp: e for sp, e in before.items() if sp != 40053 and e["reply_src"] != ip_of[gone]}
    assert kept, f"no flow went to the remaining endpoints: {before}"
    for sp, e in kept.items():
        assert sp in now and now[sp]["id"] == e["id"], f"flow from port {sp} was cut: {e}"
    # One log line for the service, counting exactly the entries to the removed endpoint.
    n = 1 + sum(1 for sp, e in before.items() if sp != 40053 and e["reply_src"] == ip_of[gone])
    assert f"test/web: deleted {n} stale UDP conntrack entries" in plab.node.log(), \
        [line for line in plab.node.log().splitlines() if "conntrack" in line]


def test_frontend_gaining_endpoints_forgets_unnated_flow(plab):
    node = plab.node.ns
    # Before the service exists, its NodePort is just a closed local port: the
    # datagrams are delivered un-NATed (ICMP port unreachable) and conntrack
    # confirms the flow, which every further datagram keeps alive.
    client = Client(plab, plab.outside, NODE_IP, 30053, 42053)
    wait_for(lambda: len(client.lines()) >= 5, timeout=5, what="the client's first attempts")
    assert not [n for _, n in client.lines() if n not in ("refused", "timeout")]
    stale = [e for e in conntrack_udp(node, 30053) if e["sport"] == 42053]
    assert stale and stale[0]["reply_src"] == NODE_IP, stale

    a = plab.ip("be-a")

    def add(items):
        items.append(svc("late", "198.18.128.53", [port(53, 5353, "UDP", name="dns",
                                                         node_port=30053)], type="NodePort"))
        items.append(eps("late", [(a, NODE, True)], [("dns", 5353, "UDP")]))
    t0 = time.time()
    edit_manifests(plab, add)
    wait_for(lambda: [n for _, n in client.lines(t0) if n == "be-a"], timeout=3,
             what="the client's flow to reach the new service's endpoint")
    client.stop()
    now = [e for e in conntrack_udp(node, 30053) if e["sport"] == 42053]
    assert now and now[0]["reply_src"] == a, now
    assert "test/late: deleted 1 stale UDP conntrack entries" in plab.node.log()
