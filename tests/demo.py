#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""make demo: one node in a network namespace, an agent with a static pool,
three pods wired through the real plugin, pings between them, and berthctl.

Everything lives in namespaces this script creates, and all of it is removed
on exit, on Ctrl-C and after a failure.
"""
import argparse
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lab import Lab, Node, Pod  # noqa: E402

BOLD, DIM, RESET = ("\033[1m", "\033[2m", "\033[0m") if sys.stdout.isatty() else ("", "", "")


def step(text):
    print(f"\n{BOLD}== {text}{RESET}", flush=True)


def show(cmd, out):
    print(f"{DIM}$ {cmd}{RESET}")
    print(out.rstrip())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin-dir", default=os.path.join(os.path.dirname(__file__), "..", "build"))
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("make demo needs root: it creates network namespaces")
    # Ctrl-C and SIGTERM unwind through the finally below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))
    Lab.sweep()
    lab = Lab(os.path.abspath(args.bin_dir))
    t0 = time.time()
    try:
        step("A node namespace on a VPC subnet (198.18.0.0/24), pool 198.18.1.0/28")
        fabric = lab.netns("vpc")
        node = Node(lab, fabric, "198.18.0.10", "198.18.1.0/28", fabric_addr="198.18.0.1")
        node.ns.run("ip", "route", "add", "default", "via", "198.18.0.1")
        fabric.run("ip", "route", "add", "198.18.1.0/28", "via", "198.18.0.10")
        node.start_agent("--cooldown", "30")
        show("cat 10-berth.conflist  # written once the agent serves",
             open(os.path.join(node.conf_dir, "10-berth.conflist")).read())

        step("Three pods wired by berth-cni ADD, as a container runtime calls it")
        pods = [Pod(node, name, k8s_ns="demo") for name in ("web-0", "web-1", "db-0")]
        for p in pods:
            p.add()
            print(f"  {p.k8s_ns}/{p.name:6} -> {p.ip}/32 via host veth "
                  f"{p.result['interfaces'][0]['name']}")
        show(f"ip -n {pods[0].ns.name} route   # inside web-0",
             pods[0].ns.run("ip", "route").stdout)
        show(f"ip -n {pods[0].ns.name} neigh   # the gateway's MAC is pinned: no ARP",
             pods[0].ns.run("ip", "neigh").stdout)
        show("ip route   # on the node: one /32 per pod, proto 190 = berth",
             node.ns.run("ip", "route").stdout)

        step("Pod to pod, routed natively on the node: no bridge, no overlay, no NAT")
        for src, dst in ((pods[0], pods[1]), (pods[1], pods[2]), (pods[2], pods[0])):
            r = src.ns.run("ping", "-c", "1", "-W", "2", dst.ip)
            rtt = [l for l in r.stdout.splitlines() if "time=" in l][0].split("time=")[1]
            print(f"  {src.name:6} -> {dst.name:6} ({dst.ip}): reply in {rtt}")
        r = pods[0].ns.run("ping", "-c", "1", "-W", "2", "198.18.0.1")
        print(f"  web-0  -> VPC router (198.18.0.1): {'ok' if r.returncode == 0 else 'FAILED'}")

        step("berthctl status")
        print(node.berthctl("status").stdout.rstrip())
        step("berthctl pods")
        print(node.berthctl("pods").stdout.rstrip())

        step("berth-cni DEL of db-0: the address cools down before anyone reuses it")
        code, out, _ = pods[2].cni("DEL")
        print(f"  DEL exit code {code}")
        print(node.berthctl("status").stdout.splitlines()[6])
        print(f"\n{BOLD}Demo finished in {time.time() - t0:.1f}s; cleaning up.{RESET}")
    finally:
        lab.close()


if __name__ == "__main__":
    main()
