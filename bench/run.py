#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""make bench: berth beside its peers, in the same run, medians and ratios.

CNI: ADD and DEL latency of berth-cni + berth-agent against Debian's ptp +
host-local doing the same work (a veth, a /32, routes), one pod at a time and
in bursts of 30 concurrent ADDs.
API sync: berth-agent's initial list of 10k services / 100k endpoints from the
test API server, against curl downloading the same lists (the floor: bytes
over the wire), and the agent's peak RSS.
Service proxy (bench/proxy_bench.py): full sync at 1k/10k/30k services and one
endpoint change at 10k against kube-proxy's nftables and iptables modes, and the
new-connection rate through a ClusterIP against a single DNAT rule and no NAT.
Writes bench/results.md and prints it; `--sections` runs some sections only
(and then writes results.md only when --out is given).
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
from apiserver.kubeapi import KubeAPIServer  # noqa: E402
from lab import Lab, Node  # noqa: E402
import proxy_bench  # noqa: E402

SERIAL = 60
BURST = 30
ROUNDS = 5


def pct(xs, p):
    xs = sorted(xs)
    k = (len(xs) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def machine():
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB RAM"
                break
    return (f"{os.cpu_count()} cores x {cpu}, {mem}, kernel {platform.release()} "
            f"({platform.node()})")


def run_worker(node, job):
    worker = os.path.join(HERE, "cni_worker.py")
    r = node.ns.run("/usr/bin/python3", worker, input=json.dumps(job), timeout=600)
    return json.loads(r.stdout)


def bench_cni(lab):
    fabric = lab.netns("f")
    node = Node(lab, fabric, "198.18.0.10", "198.18.4.0/24", fabric_addr="198.18.0.1")
    node.start_agent("--cooldown", "0", "--no-portmap")
    berth_conf = node.plugin_conf()
    ptp_conf = {"cniVersion": "1.0.0", "name": "ptpnet", "type": "ptp", "ipMasq": False,
                "mtu": 1500,
                "ipam": {"type": "host-local", "ranges": [[{"subnet": "198.18.5.0/24"}]],
                         "routes": [{"dst": "0.0.0.0/0"}],
                         "dataDir": os.path.join(lab.tmp, "host-local")}}
    peers = {
        "berth": (os.path.join(lab.bin_dir, "berth-cni"), berth_conf),
        "ptp+host-local": ("/usr/lib/cni/ptp", ptp_conf),
    }
    results = {}
    # Interleave the two so that machine noise lands on both alike.
    for rnd in range(ROUNDS):
        for name, (binary, conf) in peers.items():
            serial = [lab.netns("p").path for _ in range(SERIAL // ROUNDS)]
            burst = [[lab.netns("p").path for _ in range(BURST)]]
            out = run_worker(node, {"conf": conf, "binary": binary, "tag": f"{rnd}",
                                    "cni_path": f"{lab.bin_dir}:/usr/lib/cni",
                                    "serial_netns": serial, "burst_netns": burst})
            acc = results.setdefault(name, {"add": [], "del": [], "burst_p99": [],
                                            "burst_fail": 0})
            acc["add"] += out["add"]
            acc["del"] += out["del"]
            for b in out["burst_add"]:
                acc["burst_p99"].append(pct(b["times"], 99))
                acc["burst_fail"] += b["failures"]
            for ns in lab.namespaces[-(len(serial) + BURST):]:
                ns.delete()
    return results


def table_cni(res):
    b, p = res["berth"], res["ptp+host-local"]
    rows = []

    def row(metric, bv, pv, target=""):
        rows.append(f"| {metric} | {bv:.2f} ms | {pv:.2f} ms | {bv / pv:.2f} | {target} |")

    row("ADD p50", pct(b["add"], 50), pct(p["add"], 50))
    row("ADD p99", pct(b["add"], 99), pct(p["add"], 99))
    row("DEL p50", pct(b["del"], 50), pct(p["del"], 50))
    row("DEL p99", pct(b["del"], 99), pct(p["del"], 99))
    addel_b = [a + d for a, d in zip(b["add"], b["del"])]
    addel_p = [a + d for a, d in zip(p["add"], p["del"])]
    row("ADD+DEL p50", pct(addel_b, 50), pct(addel_p, 50), "ratio <= 0.50")
    row(f"{BURST} concurrent ADDs, p99 (median of {ROUNDS} bursts)",
        statistics.median(b["burst_p99"]), statistics.median(p["burst_p99"]), "berth < 100 ms")
    rows.append(f"| {BURST}-pod burst ADD failures | {b['burst_fail']} | {p['burst_fail']} | | 0 |")
    head = ["| metric | berth | ptp + host-local | ratio | target |",
            "|---|---|---|---|---|"]
    return "\n".join(head + rows)


SYNC_SERVICES = 10000
SYNC_ENDPOINTS = 10
SYNC_RUNS = 3


def wait_log(path, text, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(path) as f:
            if text in f.read():
                return time.monotonic()
        time.sleep(0.005)
    raise RuntimeError(f"{text!r} not in {path} after {timeout}s")


def vm_hwm_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def bench_sync(lab):
    fabric = lab.netns("f")
    node = Node(lab, fabric, "198.18.0.10", "198.18.6.0/28", fabric_addr="198.18.0.1")
    api = KubeAPIServer(netns=node.ns.path, bookmark_interval=30)
    api.start()
    try:
        api.seed(SYNC_SERVICES, SYNC_ENDPOINTS)
        kubeconfig = api.kubeconfig(os.path.join(lab.tmp, "kubeconfig"))
        auth = ["-H", f"Authorization: Bearer {api.token}", "--cacert", api.ca_file]
        berth, floor, rss = [], [], []
        for _ in range(SYNC_RUNS):
            # The floor: both collections at once (as the agent's reflectors run), no parsing.
            t = time.monotonic()
            procs = [node.ns.popen("curl", "-sf", "-o", "/dev/null", *auth,
                                   f"{api.url}{path}")
                     for path in ("/api/v1/services", "/apis/discovery.k8s.io/v1/endpointslices")]
            if any(p.wait() for p in procs):
                raise RuntimeError("curl failed")
            floor.append(time.monotonic() - t)

            with open(node.agent_log, "w"):
                pass
            t = time.monotonic()
            node.start_agent("--kubeconfig", kubeconfig, "--node-name", "node-0",
                             "--no-portmap", wait=False)
            done = wait_log(node.agent_log, "all resources synced")
            berth.append(done - t)
            rss.append(vm_hwm_kib(node.agent.pid) / 1024)
            node.stop_agent()
    finally:
        api.stop()
    return {"berth": berth, "floor": floor, "rss": rss}


def table_sync(res):
    b, f = statistics.median(res["berth"]), statistics.median(res["floor"])
    rss = statistics.median(res["rss"])
    return "\n".join([
        "| metric | berth | curl (floor) | ratio | target |",
        "|---|---|---|---|---|",
        f"| initial sync, {SYNC_SERVICES // 1000}k services / {SYNC_SERVICES * SYNC_ENDPOINTS // 1000}k endpoints "
        f"(median of {SYNC_RUNS}) | {b:.2f} s | {f:.2f} s | {b / f:.2f} | ratio <= 3, berth < 2 s |",
        f"| agent peak RSS (VmHWM) at that scale | {rss:.1f} MiB | | | < 64 MiB |",
    ])


SECTIONS = ("cni", "sync", "proxy-sync", "proxy-datapath")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin-dir", default=os.path.join(HERE, "..", "build"))
    ap.add_argument("--out", default=None,
                    help="report file (default bench/results.md when every section runs)")
    ap.add_argument("--sections", default=",".join(SECTIONS),
                    help=f"comma-separated subset of {','.join(SECTIONS)}")
    ap.add_argument("--budget", type=float, default=555,
                    help="seconds the whole run may take: the proxy sync section gives up the "
                         "costliest repetitions (30k) to stay within it")
    args = ap.parse_args()
    which = [w for w in args.sections.split(",") if w]
    bad = [w for w in which if w not in SECTIONS]
    if bad:
        sys.exit(f"unknown sections {bad}; choose from {SECTIONS}")
    out = args.out or (os.path.join(HERE, "results.md") if set(which) == set(SECTIONS) else None)
    if os.geteuid() != 0:
        sys.exit("make bench needs root: it creates network namespaces")
    Lab.sweep()
    lab = Lab(os.path.abspath(args.bin_dir))
    try:
        t0 = time.time()
        t0_mono = time.monotonic()
        report = [
            "# berth benchmark report",
            "",
            f"Machine: {machine()}; load average at start {os.getloadavg()[0]:.2f}.",
            f"Tools: {proxy_bench.tool_versions()}.",
            "",
        ]
        if "cni" in which:
            log("cni: ADD/DEL ...")
            cni = bench_cni(lab)
            report += [
                f"## CNI ADD/DEL latency ({SERIAL} pods one at a time, {ROUNDS} bursts of {BURST})",
                "",
                "Wall time of each plugin process as the runtime sees it, spawned inside the node",
                "namespace; berth and the peer interleaved in the same run.",
                "",
                table_cni(cni),
                "",
            ]
        if "sync" in which:
            log("api sync ...")
            sync = bench_sync(lab)
            report += [
                "## API sync (test API server over TLS, 500 objects a page)",
                "",
                "Wall time from the agent's start to its log line saying every resource is synced,",
                "beside curl downloading the same two collections unpaginated and discarding them.",
                "",
                table_sync(sync),
                "",
            ]
        proxy_which = [w.split("-", 1)[1] for w in which if w.startswith("proxy-")]
        if proxy_which:
            psync, pdp, perr = proxy_bench.run(lab, log, proxy_which,
                                               deadline=t0_mono + args.budget)
            report += proxy_bench.sections(psync, pdp, perr)
        report.insert(3, f"Generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by "
                         f"`make bench` (sections: {', '.join(which)}) in {time.time() - t0:.0f} s; "
                         f"load average at the end {os.getloadavg()[0]:.2f} (other work on the "
                         "machine shows up as noise in every figure).")
        text = "\n".join(report)
        if out:
            with open(out, "w") as f:
                f.write(text)
        print(text)
    finally:
        lab.close()


if __name__ == "__main__":
    main()
