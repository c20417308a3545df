# SPDX-License-Identifier: Apache-2.0
"""Service proxy benchmarks for `make bench`, beside kube-proxy doing the same work.

1. Full sync of N services x 10 endpoints into an empty network namespace:
   berth's nftables backend (tests/drivers/nft_driver.c, op "gen") against
   `nft -f` loading kube-proxy's nftables-mode transaction and iptables-restore
   loading kube-proxy's iptables-mode ruleset (bench/kube_rules.py writes both
   for the very same services, addresses and endpoints).
2. One endpoint changed with 10k services present: nft_driver "gen_change"
   against `nft -f` of the transaction kube-proxy emits for that change.
3. Data path: new TCP connections per second (one request per connection) and
   their latency from a client namespace to a server namespace, through a node
   namespace holding berth's 10k-service table (target service last), through one
   holding kube-proxy's nftables ruleset for the same 10k services, through a
   node with one hand-written `dnat to` rule (the floor any NAT proxy pays) and
   through a node with no rules at all (the pod address, no NAT).

Every namespace is created here through tests/lab.py and deleted after use and
on failure (Lab.close()); traffic stays in 198.18.0.0/15.
"""
import glob
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, HERE)
from lab import veth_pair  # noqa: E402
import kube_rules as kr  # noqa: E402

EPS = 10
POD_CIDR = "198.18.12.0/24"  # the data-path client's link: an in-cluster client, no masquerade
SERVICE_CIDR = "198.19.0.0/16"
BERTH_CONFIG = {"pod_cidrs": [POD_CIDR], "service_cidrs": [SERVICE_CIDR]}

# Repetitions per scale, and how long any load may run before it is stopped.
# kube-proxy's nft -f is O(N^2) in the kernel (DESIGN.md): over a minute at 10k
# on a 2-core machine and many minutes at 30k, so it runs once at 10k and is
# stopped at the cap at 30k (iptables-nft-restore too: > 3 min at 30k); the
# report then gives the cap as a lower bound. A tool stopped at a scale is not
# run again there. This keeps `make bench` under 10 minutes on 2 cores.
SCALES = (1000, 10000, 30000)
REPS = {
    "berth": {1000: 5, 10000: 3, 30000: 2},
    "nft": {1000: 5, 10000: 1, 30000: 1},
    "iptables": {1000: 5, 10000: 3, 30000: 1},
}
CAP = {1000: 60, 10000: 180, 30000: 60}
REPEAT_MAX = 20  # seconds: a load that took longer is not repeated at that scale
CHANGES = 5  # one-endpoint changes per 10k ruleset (each on a different service)
CHANGE_AT = 10000  # the scale at which the change is measured
CHANGE_ROUNDS = 1  # kube-proxy: CHANGE_ROUNDS x CHANGES changes (~1 s each at 10k)

DP_SECONDS = 0.5
DP_ROUNDS = 41  # short rounds, many of them: the per-round ratios pair runs 2 s apart
DP_SERVICES = 10000
DP_RESERVE = 150  # seconds of the time budget kept for the data path (~25 s of it kube-proxy's load)


# ---------------------------------------------------------------- tools

def build_tools(bin_dir, out_dir):
    """nft_driver (from the build's backend objects) and the connrate client/server."""
    objs = sorted(glob.glob(os.path.join(bin_dir, "proxy", "*.o")) +
                  glob.glob(os.path.join(bin_dir, "lib", "*.o")))
    if not any(o.endswith("/nft.o") for o in objs):
        raise RuntimeError(f"no nftables backend objects under {bin_dir}: run make first")
    # An archive, so the linker takes only the objects the driver needs: the
    # backend's file list may change without this script knowing.
    archive = os.path.join(out_dir, "libberth-bench.a")
    subprocess.run(["ar", "rcs", archive, *objs], check=True)
    pkgs = ["libmnl", "libnftnl", "jansson", "nettle", "yaml-0.1", "libcurl"]
    pkg = subprocess.run(["pkg-config", "--cflags", "--libs", *pkgs], check=True,
                         capture_output=True, text=True).stdout.split()
    san = (["-fsanitize=address,undefined"]
           if "san" in os.path.basename(os.path.normpath(bin_dir)) else [])
    driver = os.path.join(out_dir, "nft_driver")
    subprocess.run(["gcc", "-std=gnu11", "-O2", "-D_GNU_SOURCE", *san,
                    "-I", os.path.join(ROOT, "include"), "-o", driver,
                    os.path.join(ROOT, "tests", "drivers", "nft_driver.c"), archive, *pkg],
                   check=True)
    connrate = os.path.join(out_dir, "connrate")
    subprocess.run(["gcc", "-O2", "-Wall", "-Wextra", "-o", connrate,
                    os.path.join(HERE, "connrate.c")], check=True)
    return driver, connrate


def _vm_hwm_mib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def timed(ns, argv, timeout, stdin_data=None):
    """Run argv inside ns: (wall seconds or None if stopped at timeout, peak RSS MiB, stdout, rc).

    A thread reaps the process with wait4 for an exact end time; meanwhile its VmHWM
    is sampled every 20 ms (wait4's ru_maxrss would count the forking Python's RSS).
    nsenter execs the command, so the pid is the command's and a timeout kills that pid.
    """
    with tempfile.TemporaryFile() as fin, tempfile.TemporaryFile() as fout, \
            tempfile.TemporaryFile() as ferr:
        if stdin_data is not None:
            fin.write(stdin_data.encode())
            fin.seek(0)
        res = {}
        t0 = time.monotonic()
        p = subprocess.Popen(ns.argv(*argv), stdin=fin, stdout=fout, stderr=ferr)

        def reap():
            _, status, _ = os.wait4(p.pid, 0)
            res.update(t=time.monotonic(), status=status)

        th = threading.Thread(target=reap)
        th.start()
        rss = 0.0
        while th.is_alive() and time.monotonic() - t0 < timeout:
            if "status" not in res:
                rss = max(rss, _vm_hwm_mib(p.pid))
            th.join(0.02)
        stopped = th.is_alive()
        if stopped:
            os.kill(p.pid, signal.SIGKILL)
            th.join()
        p.returncode = os.waitstatus_to_exitcode(res["status"])  # reaped above
        fout.seek(0)
        ferr.seek(0)
        out, err = fout.read().decode(errors="replace"), ferr.read().decode(errors="replace")
    if not stopped and p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:3])} failed ({p.returncode}): {err[-2000:]}")
    return (None if stopped else res["t"] - t0), rss, out, p.returncode


def drop_ns(ns):
    """Free the ruleset synchronously, then delete the namespace, so that the kernel's
    deferred teardown of a huge table does not run during the next measurement."""
    if ns.exists():
        ns.run("nft", "flush", "ruleset", check=False, timeout=300)
        ns.delete()
        time.sleep(0.5)


def run_berth(driver, ns, steps, timeout):
    """nft_driver with steps in ns: (wall or None if stopped at timeout, rss, step lines)."""
    wall, rss, out, _ = timed(ns, [driver], timeout,
                              json.dumps({"config": BERTH_CONFIG, "steps": steps}))
    lines = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
    for l in lines:
        if l["ret"] != 0:
            raise RuntimeError(f"nft_driver {l['op']}: {l['ret']} {l['err']}")
    return wall, rss, lines[1:]


# ---------------------------------------------------------------- 1 + 2: control plane

def change_index(rnd, k, n):
    """The service whose endpoint change k of round rnd moves: spread over the table."""
    return (rnd * CHANGES + k) * 1999 % n


def _berth_load(driver, ns, n, rnd, r, log, cap):
    steps = [{"op": "gen", "count": n, "eps": EPS, "full": True}]
    if n == CHANGE_AT:
        steps += [{"op": "gen_change", "index": change_index(rnd, k, n), "ep": k % EPS}
                  for k in range(CHANGES)]
    wall, rss, out = run_berth(driver, ns, steps, cap)
    r["rss"].append(rss)
    if wall is None:
        return None
    r["wall"].append(wall)
    r["change"] += [o["stats"]["seconds"] for o in out[1:]]
    log(f"  berth {n}: {out[0]['stats']['seconds']:.3f} s apply ({wall:.3f} s process wall, "
        f"{rss:.0f} MiB)" + (f"; changes {[round(o['stats']['seconds'] * 1e3, 2) for o in out[1:]]}"
                             " ms" if out[1:] else ""))
    return out[0]["stats"]["seconds"]


def _nft_load(path, ns, n, rnd, r, log, cap):
    t, rss, _, _ = timed(ns, ["nft", "-f", path], cap)
    r["rss"].append(rss)
    if t is None:
        return None
    log(f"  nft -f {n}: {t:.3f} s ({rss:.0f} MiB)")
    return t


def bench_kube_change(lab, log, rounds):
    """kube-proxy's one-endpoint change on its 10k ruleset. The ruleset is put in place in
    chunks of 1000 services (seconds, where the single full-sync transaction takes minutes
    and may have been stopped at its cap); the changes then go through `nft -f` one by one."""
    ns = lab.netns("pk")
    times = []
    try:
        t0 = time.monotonic()
        for text in kr.nft_full_chunks(CHANGE_AT, EPS, POD_CIDR, SERVICE_CIDR):
            ns.run("nft", "-f", "-", input=text, timeout=300)
        log(f"  kube-proxy's {CHANGE_AT} services in place (in chunks) in "
            f"{time.monotonic() - t0:.1f} s")
        for rnd in range(rounds):
            for k in range(CHANGES):
                ct, _, _, _ = timed(ns, ["nft", "-f", "-"], 120,
                                    kr.nft_change(change_index(rnd, k, CHANGE_AT), EPS, k % EPS,
                                                  POD_CIDR))
                times.append(ct)
        log(f"  nft -f one change at {CHANGE_AT}: {[round(x * 1e3) for x in times]} ms")
    finally:
        drop_ns(ns)
    return times


def _ipt_load(path, ns, n, rnd, r, log, cap):
    t, rss, _, _ = timed(ns, ["iptables-restore", path], cap)
    r["rss"].append(rss)
    if t is not None:
        log(f"  iptables-restore {n}: {t:.3f} s ({rss:.0f} MiB)")
    return t


def bench_sync(lab, driver, log, deadline=None):
    """Full syncs and changes; every load ends by `deadline` (time.monotonic()), the
    ones that would start after it are skipped and reported so."""
    deadline = deadline or float("inf")
    tmp = os.path.join(lab.tmp, "kube-rules")
    os.makedirs(tmp, exist_ok=True)
    res = {}
    for n in SCALES:
        nft_file = os.path.join(tmp, f"kube-proxy-{n}.nft")
        ipt_file = os.path.join(tmp, f"kube-proxy-{n}.iptables")
        with open(nft_file, "w") as f:
            f.write(kr.nft_full(n, EPS, POD_CIDR, SERVICE_CIDR))
        with open(ipt_file, "w") as f:
            f.write(kr.iptables_full(n, EPS, POD_CIDR))
        loaders = {
            "berth": lambda ns, rnd, r, cap: _berth_load(driver, ns, n, rnd, r, log, cap),
            "nft": lambda ns, rnd, r, cap: _nft_load(nft_file, ns, n, rnd, r, log, cap),
            "iptables": lambda ns, rnd, r, cap: _ipt_load(ipt_file, ns, n, rnd, r, log, cap),
        }
        res[n] = {t: {"times": [], "stopped": 0, "wall": [], "rss": [], "change": [],
                      "error": None, "skipped": 0, "cap": CAP[n]} for t in loaders}
        for rnd in range(max(REPS[t][n] for t in REPS)):
            for tool, load in loaders.items():
                r = res[n][tool]
                if rnd >= REPS[tool][n] or r["stopped"] or r["error"]:
                    continue  # once stopped at the cap, a tool is not run again at this scale
                if r["times"] and r["times"][-1] > REPEAT_MAX:
                    continue  # repeat only what is cheap
                left = deadline - time.monotonic()
                if left < 10:
                    r["skipped"] += 1
                    log(f"  {tool} {n}: skipped, out of time budget")
                    continue
                r["cap"] = cap = min(CAP[n], int(left))
                ns = lab.netns("p" + tool[0])
                try:
                    t = load(ns, rnd, r, cap)
                except RuntimeError as e:  # a crash of the tool: reported in its cell
                    r["error"] = (str(e).strip().splitlines() or ["?"])[0][:200]
                    log(f"  {tool} {n}: failed: {r['error']}")
                    continue
                finally:
                    drop_ns(ns)
                if t is None:
                    r["stopped"] += 1
                    log(f"  {tool} {n}: stopped after {cap} s")
                else:
                    r["times"].append(t)
        os.unlink(nft_file)
        os.unlink(ipt_file)
        if n == CHANGE_AT:
            try:
                res[n]["nft"]["change"] = bench_kube_change(lab, log, CHANGE_ROUNDS)
            except (RuntimeError, subprocess.SubprocessError) as e:
                log(f"  kube-proxy change: failed: {e}")
    return res


# ---------------------------------------------------------------- 3: data path

PATHS = ("direct", "floor", "berth", "kube")  # node k's links: 198.18.1k.0/24, 198.18.2k.0/24
FLOOR_VIP = "198.19.250.1"  # outside the generated ClusterIPs (198.19.0.1 + i)
# kube-proxy's copy of the services sits at other ClusterIPs so the client can route it to
# its own node: 198.19.128.1 + i, in 198.19.128.0/17 (more specific than berth's /16).
KUBE_CIP_BASE = int(kr.ipaddress.IPv4Address("198.19.128.1"))
KUBE_SERVICE_CIDR = "198.19.128.0/17"
KUBE_POD_CIDR = f"198.18.1{PATHS.index('kube')}.0/24"  # its client's link: no masquerade either


def bench_datapath(lab, driver, connrate, log):
    target = DP_SERVICES - 1  # the last service of the table
    vip, eps = kr.cluster_ip(target), kr.endpoints(target, EPS)
    client, server = lab.netns("dc"), lab.netns("ds")
    client.sysctl("net.ipv4.ip_local_port_range", "1024 65000")
    nodes = {}
    for k, kind in enumerate(PATHS):
        n = nodes[kind] = lab.netns("d" + kind[:2])
        n.sysctl("net.ipv4.ip_forward", 1)
        # RST-closed connections leave CLOSE entries; short timeouts keep the table small.
        for key, v in (("tcp_timeout_close", 1), ("tcp_timeout_time_wait", 1),
                       ("tcp_timeout_fin_wait", 1), ("tcp_timeout_close_wait", 1),
                       ("tcp_timeout_last_ack", 1)):
            n.run("sysctl", "-qw", f"net.netfilter.nf_conntrack_{key}={v}", check=False)
        veth_pair(n, "c", client, f"n{k}")
        veth_pair(n, "s", server, f"n{k}")
        n.run("ip", "addr", "add", f"198.18.1{k}.1/24", "dev", "c")
        client.run("ip", "addr", "add", f"198.18.1{k}.2/24", "dev", f"n{k}")
        n.run("ip", "addr", "add", f"198.18.2{k}.1/24", "dev", "s")
        server.run("ip", "addr", "add", f"198.18.2{k}.2/24", "dev", f"n{k}")
        n.run("ip", "route", "add", "198.18.128.0/17", "via", f"198.18.2{k}.2")
        server.run("ip", "route", "add", f"198.18.1{k}.0/24", "via", f"198.18.2{k}.1")
    for ep in eps:
        server.run("ip", "addr", "add", f"{ep}/32", "dev", "lo")
    client.run("ip", "route", "add", "198.18.128.0/17", "via", "198.18.10.1")  # direct
    client.run("ip", "route", "add", "198.19.250.0/24", "via", "198.18.11.1")  # floor
    client.run("ip", "route", "add", SERVICE_CIDR, "via", "198.18.12.1")  # berth
    client.run("ip", "route", "add", KUBE_SERVICE_CIDR, "via", "198.18.13.1")  # kube-proxy
    nodes["floor"].run("nft", "-f", "-", input=(
        "table ip bbfloor {\n"
        "  chain pre { type nat hook prerouting priority -100; policy accept;\n"
        f"    ip daddr {FLOOR_VIP} tcp dport 80 dnat to {eps[0]}:8080\n"
        "  }\n}\n"))
    paths, berth_error, kube_error = PATHS, None, None
    try:
        t0 = time.monotonic()
        for text in kr.nft_full_chunks(DP_SERVICES, EPS, KUBE_POD_CIDR, KUBE_SERVICE_CIDR,
                                       cip_base=KUBE_CIP_BASE):
            nodes["kube"].run("nft", "-f", "-", input=text, timeout=300)
        log(f"  kube-proxy table: {DP_SERVICES} services loaded (in chunks) in "
            f"{time.monotonic() - t0:.1f} s")
    except (RuntimeError, subprocess.SubprocessError) as e:  # measure the others all the same
        kube_error = (str(e).strip().splitlines() or ["?"])[0][:200]
        paths = tuple(k for k in paths if k != "kube")
        log(f"  kube-proxy's table failed to load: {kube_error}")
    try:
        wall, _, out = run_berth(driver, nodes["berth"],
                                 [{"op": "gen", "count": DP_SERVICES, "eps": EPS, "full": True}],
                                 600)
        if wall is None:
            raise RuntimeError("nft_driver did not load the data-path table in 600 s")
        log(f"  berth table: {DP_SERVICES} services loaded in {wall:.1f} s")
    except RuntimeError as e:  # measure the peers all the same
        berth_error = (str(e).strip().splitlines() or ["?"])[0][:200]
        paths = tuple(k for k in paths if k != "berth")
        log(f"  berth table failed to load: {berth_error}")
    # Not pinned to CPUs: on a shared 2-core machine a pinned process starves behind
    # whatever else hogs its CPU in the kernel; the scheduler moves an unpinned one.
    srv = lab.track(server.popen(connrate, "-s", "8080", stdout=subprocess.PIPE, text=True))
    try:
        if srv.stdout.readline().strip() != "ready":
            raise RuntimeError("connrate server did not start")
        dest = {"direct": eps[0], "floor": FLOOR_VIP, "berth": vip,
                "kube": kr.cluster_ip(target, KUBE_CIP_BASE)}
        port = {"direct": "8080", "floor": "80", "berth": "80", "kube": "80"}

        def once(kind, secs):
            r = client.run(connrate, dest[kind], port[kind], str(secs), timeout=secs + 30)
            return json.loads(r.stdout)

        for kind in paths:  # warm up: neighbours, routes, the conntrack hash
            w = once(kind, 0.3)
            if w["conns"] == 0 and kind == "berth":  # berth's rules are broken: measure the rest
                berth_error = (f"no connection to ClusterIP {vip}:80 through berth's rules "
                               f"({w['errors']} failed)")
                log(f"  {berth_error}")
            elif w["conns"] == 0 and kind == "kube":
                kube_error = f"no connection through kube-proxy's rules ({w['errors']} failed)"
                log(f"  {kube_error}")
            elif w["conns"] == 0:
                raise RuntimeError(f"no connection through the {kind} path: {w}")
        paths = tuple(k for k in paths if not (k == "berth" and berth_error or
                                               k == "kube" and kube_error))
        res = {kind: [] for kind in PATHS}
        res["berth_error"], res["kube_error"] = berth_error, kube_error
        for rnd in range(DP_ROUNDS):
            # rotate the order each round so drift lands on every path alike
            k = rnd % len(paths)
            for kind in paths[k:] + paths[:k]:
                o = once(kind, DP_SECONDS)
                res[kind].append(o)
            log("  round %d: %s" % (rnd, ", ".join(
                f"{k} {res[k][-1]['rate']:.0f}/s p50 {res[k][-1]['p50_us']} us" for k in paths)))
    finally:
        srv.terminate()
        srv.wait(timeout=10)
        for ns in (*nodes.values(), client, server):
            drop_ns(ns)
    return res


# ---------------------------------------------------------------- report

def kscale(n):
    return f"{n // 1000}k" if n % 1000 == 0 else str(n)


def med(xs):
    return statistics.median(xs) if xs else None


def fmt_s(x):
    if x is None:
        return "n/a"
    if x < 0.1:
        return f"{x * 1e3:.2f} ms"
    return f"{x:.2f} s"


def ratio(b, p):
    if b is None or not p:
        return "n/a"
    x = b / p
    return f"{x:.3f}" if x >= 0.01 else f"{x:.2g}"


def verdict(ok):
    return "**met**" if ok else "**not met**"


def _fig(r, n):
    """A tool's figure at scale n: median, or the cap as a lower bound when it was stopped."""
    if r.get("error") and not r["times"]:
        return None, f"failed: `{r['error']}`"
    if r["times"]:
        extra = f", {r['stopped']} more stopped at {r['cap']} s" if r["stopped"] else ""
        k = len(r["times"])
        return med(r["times"]), (f"{fmt_s(med(r['times']))} (median of {k}{extra})" if k > 1
                                 else f"{fmt_s(r['times'][0])} (1 run{extra})")
    if r["stopped"]:
        return None, f"> {r['cap']} s (stopped at the cap)"
    if r["skipped"]:
        return None, "not run (time budget)"
    return None, "n/a"


def table_sync(res):
    rows = ["| metric | berth | peer | peer's figure | ratio berth/peer | target |",
            "|---|---|---|---|---|---|"]
    for n in SCALES:
        b, btxt = _fig(res[n]["berth"], n)
        target = ""
        if n == CHANGE_AT:
            target = f"berth < 1 s: {verdict(b is not None and b < 1.0)}"
        label = f"full sync, {kscale(n)} services x {EPS} endpoints"
        for peer, key, tool in (("kube-proxy nftables", "nft", "`nft -f`"),
                                ("kube-proxy iptables", "iptables", "`iptables-restore`")):
            p, ptxt = _fig(res[n][key], n)
            if b is not None and p is not None:
                rat = ratio(b, p)
            elif b is not None and res[n][key]["stopped"]:
                rat = f"< {ratio(b, res[n][key]['cap'])}"
            elif p is not None and res[n]["berth"]["stopped"]:
                rat = f"> {ratio(res[n]['berth']['cap'], p)}"
            else:
                rat = "n/a"
            rows.append(f"| {label} | {btxt} | {peer}: {tool} | {ptxt} | {rat} | {target} |")
            target = ""
    r = res[CHANGE_AT]
    bc, pc = r["berth"]["change"], r["nft"]["change"]
    b, p = med(bc), med(pc)
    mx = lambda xs: f", max {fmt_s(max(xs))}" if xs else ""  # noqa: E731
    rows.append(f"| one endpoint changed, {kscale(CHANGE_AT)} services present | {fmt_s(b)} "
                f"(median of {len(bc)}{mx(bc)}) | kube-proxy nftables: `nft -f` of its "
                f"transaction for the change | {fmt_s(p)} (median of {len(pc)}{mx(pc)}) | "
                f"{ratio(b, p)} | berth < 5 ms: {verdict(b is not None and b < 0.005)} |")
    rb, rn, ri = (med(r[t]["rss"]) for t in ("berth", "nft", "iptables"))
    if rb is not None and rn and ri:
        at_cap = lambda t: " (when stopped)" if not r[t]["times"] and r[t]["stopped"] else ""  # noqa: E731
        rows.append(f"| peak RSS of the process loading {kscale(CHANGE_AT)} services | {rb:.0f} MiB "
                    f"(nft_driver) | `nft -f` / `iptables-restore` | "
                    f"{rn:.0f} MiB{at_cap('nft')} / {ri:.0f} MiB{at_cap('iptables')} | "
                    f"{ratio(rb, rn)} / {ratio(rb, ri)} | |")
    return "\n".join(rows)


PEERS = (("floor", "one hand-written `dnat to` rule (NAT floor)", "NAT floor"),
         ("kube", "kube-proxy's nftables ruleset, same 10k services", "kube-proxy nftables"),
         ("direct", "pod address, no NAT", "pod direct"))


def _ratios(res, a, b):
    return [x["rate"] / y["rate"] for x, y in zip(res[a], res[b]) if y["rate"]]


def _paired(res, a, b):
    """Median of the per-round rate ratios a/b (the paths of a round ran back to back, so
    machine noise that hits a whole round cancels out)."""
    return med(_ratios(res, a, b))


def _spread(res, a, b):
    """The per-round ratios' quartiles: how far one round is from another on this machine."""
    xs = _ratios(res, a, b)
    if len(xs) < 4:
        return ""
    q = statistics.quantiles(xs, n=4)
    return f" (rounds: quartiles {q[0]:.3f}-{q[2]:.3f})"


def table_datapath(res):
    rows = ["| metric | berth ClusterIP | peer | peer's figure | ratio berth/peer | target |",
            "|---|---|---|---|---|---|"]
    have = [k for k, _, _ in PEERS if res[k]]
    m = {k: {f: med([o[f] for o in res[k]]) for f in ("rate", "p50_us", "p99_us")}
         for k in PATHS if res[k]}
    errors = {k: sum(o["errors"] for o in res[k]) for k in PATHS}
    slow = {k: sum(o["over_100ms"] for o in res[k]) for k in PATHS}
    if res.get("berth_error"):
        for kind, name, _ in PEERS:
            if kind not in have:
                continue
            f, sl = m[kind], slow[kind]
            rows.append(f"| new connections/s; latency p50 / p99 | failed: `{res['berth_error']}` "
                        f"| {name} | {f['rate']:.0f}/s; {f['p50_us']:.0f} / {f['p99_us']:.0f} us "
                        f"({sl} connections > 100 ms) | n/a | "
                        f"{'ratio >= 0.97 vs the floor' if kind == 'floor' else ''} |")
        return "\n".join(rows)
    b = m["berth"]
    for kind, name, _ in PEERS:
        if kind not in have:
            rows.append(f"| new connections/s | {b['rate']:.0f} | {name} | failed: "
                        f"`{res.get(kind + '_error')}` | n/a | |")
            continue
        r = _paired(res, "berth", kind)
        tgt = f"ratio >= 0.97: {verdict(r >= 0.97)}" if kind == "floor" else ""
        rows.append(f"| new connections/s (connect, 1-byte request, answer, close) | "
                    f"{b['rate']:.0f} | {name} | {m[kind]['rate']:.0f} | {r:.3f}{_spread(res, 'berth', kind)} "
                    f"| {tgt} |")
    if "kube" in have:
        rows.append(f"| new connections/s, kube-proxy's ruleset against the floor (reference) | "
                    f"| kube-proxy / NAT floor | {m['kube']['rate']:.0f} / {m['floor']['rate']:.0f} "
                    f"| ({_paired(res, 'kube', 'floor'):.3f} kube-proxy/floor{_spread(res, 'kube', 'floor')}) | |")
    for kind, _, short in PEERS:
        if kind not in have:
            continue
        for f, label in (("p50_us", "p50"), ("p99_us", "p99")):
            rows.append(f"| connection latency {label} | {b[f]:.0f} us | {short} | "
                        f"{m[kind][f]:.0f} us | {b[f] / m[kind][f]:.3f} | |")
    names = " / ".join(k for k in have)
    rows.append(f"| failed connections (all rounds) | {errors['berth']} | {names} | "
                f"{' / '.join(str(errors[k]) for k in have)} | | 0 |")
    rows.append(f"| connections slower than 100 ms (all rounds) | {slow['berth']} | {names} | "
                f"{' / '.join(str(slow[k]) for k in have)} | | |")
    return "\n".join(rows)


def tool_versions():
    def first(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True).stdout.strip().splitlines()[0]
        except (OSError, IndexError):
            return "?"
    ipt = os.path.basename(os.path.realpath(shutil.which("iptables-restore") or "?"))
    return f"{first(['nft', '--version'])}; {first(['iptables', '--version'])} (iptables-restore is {ipt})"


def _failed(title, err):
    return [title, "", f"**Not measured: the section failed:** `{err}`", ""]


def sections(sync, dp, errors=None):
    errors = errors or {}
    out = []
    if "sync" in errors:
        out += _failed("## Service proxy: control plane", errors["sync"])
    if sync is not None:
        out += [
            "## Service proxy: control plane (nftables rules for N services x 10 endpoints)",
            "",
            "Each load into a fresh, empty network namespace. berth: the nftables backend's own",
            "apply time in nft_driver (what the agent pays per sync; the driver process's wall",
            "time, which adds building the plans, is in the log). kube-proxy: wall time of `nft -f`",
            "on the transaction kube-proxy's nftables mode writes for the same services, and of",
            "`iptables-restore` on its iptables-mode ruleset. Runs per scale (1k/10k/30k): berth "
            + "/".join(str(REPS['berth'][n]) for n in SCALES)
            + ", `nft -f` " + "/".join(str(REPS['nft'][n]) for n in SCALES)
            + ", `iptables-restore` " + "/".join(str(REPS['iptables'][n]) for n in SCALES)
            + f"; a load that took over {REPEAT_MAX} s is not repeated at that scale. Any load is"
            " stopped after " + "/".join(f"{CAP[n]} s" for n in SCALES)
            + " (or earlier when the run's time budget is spent; the figure is then a lower"
            " bound) and not run again at that scale. Scaled down at 10k and 30k so that"
            " `make bench` stays under 10 minutes on 2 cores: kube-proxy's `nft -f` is O(N^2)"
            " in the kernel (DESIGN.md) and takes over a minute at 10k.",
            "The change: one endpoint of a service moved to a new address (nft_driver",
            f"`gen_change`, {CHANGES} services per berth 10k load). kube-proxy's transaction adds the",
            "new endpoint chain, flushes and rewrites the service chain and deletes the old endpoint",
            "chain; `nft -f` pays for listing the 10k-service ruleset first. Its 10k ruleset is put",
            "in place in transactions of 1000 services for this (the same rules, in seconds).",
            "",
            table_sync(sync),
            "",
        ]
    if "datapath" in errors:
        out += _failed("## Service proxy: data path", errors["datapath"])
    if dp is not None:
        out += [
            "## Service proxy: data path (10k services present)",
            "",
            "Client and server namespaces joined by four node namespaces that forward: one with",
            f"berth's table for {DP_SERVICES // 1000}k services x {EPS} endpoints (the target",
            "service is the last one), one with kube-proxy's nftables ruleset for the same",
            "services (bench/kube_rules.py, ClusterIPs moved to 198.19.128.0/17 so the client",
            "routes them to that node), one with a single `dnat to` rule, one with no rules. A C",
            "client (bench/connrate.c) opens a new TCP connection per request (SO_LINGER 0),",
            f"for {DP_SECONDS:g} s per path, {DP_ROUNDS} rounds with the paths interleaved, one",
            "client and one single-threaded epoll server. Figures are medians over the rounds; the",
            "rate ratio is the median of the per-round ratios (the paths of a round ran back to",
            "back, so noise from the rest of the machine cancels; rounds are short so that the",
            "paths of a round run close together).",
            "",
            table_datapath(dp),
            "",
        ]
    return out


def run(lab, log=print, which=("sync", "datapath"), deadline=None):
    """Run the chosen sections: (sync results, data-path results, {section: error}).

    A section that fails (say the backend under test crashes) is reported as such
    and the others still run; its namespaces are gone before the next one starts.
    """
    tools = os.path.join(lab.tmp, "bench-tools")
    os.makedirs(tools, exist_ok=True)
    results, errors = {}, {}
    try:
        driver, connrate = build_tools(lab.bin_dir, tools)
    except (subprocess.CalledProcessError, RuntimeError, OSError) as e:
        log(f"proxy: cannot build the benchmark tools: {e}")
        return None, None, {w: f"building nft_driver/connrate: {e}" for w in which}
    # the data path needs ~1 min plus berth's 10k load; the sync section gets the rest
    sync_deadline = deadline - DP_RESERVE if deadline and "datapath" in which else deadline
    for name, fn in (("sync", lambda: bench_sync(lab, driver, log, sync_deadline)),
                     ("datapath", lambda: bench_datapath(lab, driver, connrate, log))):
        if name not in which:
            continue
        log(f"proxy: {name} ...")
        try:
            results[name] = fn()
        except Exception as e:  # noqa: BLE001 - reported, the rest of the bench goes on
            log(f"proxy: {name} failed: {e!r}")
            errors[name] = str(e).strip().splitlines()[0][:300] if str(e).strip() else repr(e)
    return results.get("sync"), results.get("datapath"), errors
