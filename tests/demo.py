#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""make demo: a simulated VPC on this machine with two berth nodes, pods on both,
a Service over them, and traffic from pods, nodes and an outside host.

Everything lives in network namespaces this script creates (tests/vpclab.py), and
all of it is removed on exit, on Ctrl-C and after a failure. Nothing touches the
machine's own network.
"""
import argparse
import collections
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vpclab import CONTROL_PLANE, GATEWAY, OUTSIDE_IP, VPC_CIDR, VpcLab  # noqa: E402

BOLD, DIM, RESET = ("\033[1m", "\033[2m", "\033[0m") if sys.stdout.isatty() else ("", "", "")


TOPOLOGY = """\
    outside host 203.0.113.10 -- router 198.18.0.1 --+-- VPC subnet (a bridge) 198.18.0.0/16
                                                     +-- node-a 198.18.0.11: pods 198.18.1.0/28
                                                     +-- node-b 198.18.0.12: pods 198.18.2.0/28
"""


def step(text):
    print(f"\n{BOLD}== {text}{RESET}", flush=True)


def note(text):
    print(f"{DIM}   {text}{RESET}")


def show(cmd, out):
    print(f"{DIM}$ {cmd}{RESET}")
    print(out.rstrip(), flush=True)


def tally(lines):
    """"web-a x5, web-b x3 (they saw 198.18.1.1)" from netprobe replies."""
    who = collections.Counter(line.split()[1] for line in lines if line.startswith("reply"))
    seen = sorted({line.split()[2] for line in lines if line.startswith("reply")})
    other = collections.Counter(line for line in lines if not line.startswith("reply"))
    parts = [f"{k} x{v}" for k, v in sorted(who.items())] + \
        [f"{k} x{v}" for k, v in sorted(other.items())]
    return ", ".join(parts) + (f"  (the backend saw the client as {', '.join(seen)})"
                               if seen else "")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin-dir", default=os.path.join(os.path.dirname(__file__), "..", "build"))
    ap.add_argument("--source", choices=("manifests", "api"), default="manifests",
                    help="where the agents read Services from (default: a manifests dir)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("make demo needs root: it creates network namespaces")
    # Ctrl-C and SIGTERM unwind through VpcLab's cleanup.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with it ignored
    t0 = time.time()
    with VpcLab.open(args.bin_dir, nodes=2, source=args.source) as vpc:
        a, b = vpc.nodes
        step(f"A VPC subnet {VPC_CIDR} (a bridge in a namespace), two nodes on it, "
             "a router to the outside")
        print(TOPOLOGY)
        for n in vpc.nodes:
            print(f"  {n.k8s_name}: primary address {n.addr}, pod addresses {n.pool}, "
                  f"its own berth-agent (proxy: nftables)")
        print(f"  router {GATEWAY}: the way out to the outside host {OUTSIDE_IP}")
        src = f"the test API server on {CONTROL_PLANE}" if args.source == "api" else \
            "one manifests directory shared by both agents"
        print(f"  Services come from {src}")

        step("Pods wired by berth-cni ADD (as a container runtime calls it): "
             "each gets a VPC address")
        web_a, web_b = vpc.pod(a, "web-a"), vpc.pod(b, "web-b")
        client = vpc.pod(a, "client")
        for p in (web_a, web_b, client):
            print(f"  {p.name:7} on {p.node.k8s_name}: {p.ip}/32  "
                  f"(host veth {p.result['interfaces'][0]['name']})")
        for p in (web_a, web_b):
            vpc.serve(p)
        note("web-a and web-b run a tiny server on 8080 that answers with its name and "
             "the address it saw the client come from")

        step("Pod to pod across nodes: routed natively on the VPC, no overlay, no NAT")
        show(f"ip route get {web_b.ip}   # on node-a: straight out of eth0, no tunnel",
             a.ns.run("ip", "route", "get", web_b.ip).stdout.splitlines()[0])
        r = vpc.probe(client, "tcp", web_b.ip, 8080)
        print(f"  client ({client.ip}) -> web-b ({web_b.ip}:8080): {tally(r)}")
        mac_b = b.ns.json("ip", "-j", "link", "show", "eth0")[0]["address"]
        show(f"ip neigh show {web_b.ip}   # on node-a",
             a.ns.run("ip", "neigh", "show", web_b.ip).stdout)
        note(f"node-b's eth0 ({mac_b}) answers for its pods on the subnet, "
             "as a VPC delivers a secondary address to the interface that owns it")

        step("A Service over web-a and web-b: ClusterIP, plus NodePort 30080 on every node")
        ip = vpc.service("web", [web_a, web_b], type="NodePort", node_port=30080)
        print(f"  default/web: ClusterIP {ip}:80 -> 8080 on {web_a.ip} (node-a) and "
              f"{web_b.ip} (node-b); both agents programmed it")
        r = vpc.probe(client, "tcp", ip, 80, count=10)
        print(f"  client -> {ip}:80, 10 requests: {tally(r)}")
        note("backends on both nodes answer; no masquerade: the client's own address")

        step(f"From the outside host ({OUTSIDE_IP}) to the NodePort")
        r = vpc.probe(vpc.outside, "tcp", b.addr, 30080, count=8)
        print(f"  outside -> node-b {b.addr}:30080, 8 requests: {tally(r)}")
        note("externalTrafficPolicy Cluster: any backend, masqueraded to the node")
        r = vpc.probe(vpc.outside, "tcp", web_a.ip, 8080, timeout=0.5)
        print(f"  outside -> web-a's pod address directly: {tally(r)}"
              "  (errno 101: the outside has no route to pods)")

        step("Pod egress to the outside host: SNATed to the node's address")
        vpc.serve(vpc.outside, "outside")
        r = vpc.probe(client, "tcp", OUTSIDE_IP, 8080)
        print(f"  client ({client.ip}) on node-a -> outside {OUTSIDE_IP}:8080: {tally(r)}")
        note(f"leaving the VPC, a pod looks like its node ({a.addr}); "
             "inside the VPC it keeps its own address (above)")

        step("berthctl status   (on node-a)")
        print(a.berthctl("status").stdout.rstrip())
        step("berthctl pods   (on node-a)")
        print(a.berthctl("pods").stdout.rstrip())
        step("berthctl services   (on node-a)")
        print(a.berthctl("services").stdout.rstrip())
        step("nft list table ip berth   (in node-a's namespace: what berth programmed, "
             "over netlink, in one batch)")
        print(a.nft().rstrip())
        print(f"\n{BOLD}Demo finished in {time.time() - t0:.1f}s; cleaning up.{RESET}",
              flush=True)
    if vpc.lab.reports:
        sys.exit("sanitizer report from a berth daemon:\n" + "\n".join(vpc.lab.reports))


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("\ninterrupted: everything the demo made has been removed")
