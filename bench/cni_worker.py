# SPDX-License-Identifier: Apache-2.0
"""Runs inside the node namespace: times CNI ADD/DEL of one plugin config.

Spawning the plugin directly from here (not through nsenter) keeps the
runtime's own cost out of the figures, for berth and the peer alike.
"""
import json
import os
import selectors
import subprocess
import sys
import time


def invoke(binary, command, conf, cid, netns, cni_path):
    env = {"CNI_COMMAND": command, "CNI_CONTAINERID": cid, "CNI_NETNS": netns,
           "CNI_IFNAME": "eth0", "CNI_PATH": cni_path, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
           "CNI_ARGS": f"IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME={cid}"}
    t = time.perf_counter()
    p = subprocess.run([binary], input=json.dumps(conf), env=env, capture_output=True, text=True)
    dt = (time.perf_counter() - t) * 1000
    if p.returncode != 0:
        raise RuntimeError(f"{binary} {command} failed: {p.stdout} {p.stderr}")
    return dt, json.loads(p.stdout) if p.stdout.strip() else None


def spawn(binary, command, conf, cid, netns, cni_path):
    env = {"CNI_COMMAND": command, "CNI_CONTAINERID": cid, "CNI_NETNS": netns,
           "CNI_IFNAME": "eth0", "CNI_PATH": cni_path, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
           "CNI_ARGS": f"IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME={cid}"}
    p = subprocess.Popen([binary], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env, text=True)
    return p, time.perf_counter()


def collect(procs):
    """Each process's output and the moment it ended (its stdout closed), read
    as they come: reading them in spawn order would time an early finisher by
    when the ones before it ended."""
    sel = selectors.DefaultSelector()
    bufs, ends = [[] for _ in procs], [None] * len(procs)
    for i, (p, _, _, _) in enumerate(procs):
        os.set_blocking(p.stdout.fileno(), False)
        sel.register(p.stdout.fileno(), selectors.EVENT_READ, i)
    left = len(procs)
    while left:
        for key, _ in sel.select():
            i = key.data
            chunk = os.read(key.fd, 65536)
            if chunk:
                bufs[i].append(chunk)
                continue
            ends[i] = time.perf_counter()
            sel.unregister(key.fd)
            left -= 1
    sel.close()
    return [(b"".join(b).decode(), t) for b, t in zip(bufs, ends)]


def main():
    job = json.load(sys.stdin)
    conf, binary, cni_path = job["conf"], job["binary"], job["cni_path"]
    out = {"add": [], "del": [], "burst_add": []}
    # One at a time.
    for i, netns in enumerate(job["serial_netns"]):
        cid = f"s{job['tag']}{i}"
        dt, res = invoke(binary, "ADD", conf, cid, netns, cni_path)
        out["add"].append(dt)
        dt, _ = invoke(binary, "DEL", dict(conf, prevResult=res), cid, netns, cni_path)
        out["del"].append(dt)
    # Bursts: all ADDs of a round started together, as a node scheduling a burst of pods.
    for r, batch in enumerate(job["burst_netns"]):
        procs = []
        for i, netns in enumerate(batch):
            cid = f"b{job['tag']}{r}x{i}"
            p, t = spawn(binary, "ADD", conf, cid, netns, cni_path)
            p.stdin.write(json.dumps(conf))
            p.stdin.close()
            procs.append((p, t, cid, netns))
        times, fails, added = [], 0, []
        for (p, t, cid, netns), (res, t_end) in zip(procs, collect(procs)):
            p.wait()
            times.append((t_end - t) * 1000)
            if p.returncode != 0:
                fails += 1
            else:
                added.append((cid, netns, json.loads(res)))
        # Only once every ADD of the burst is timed: a DEL now would run inside the window.
        for cid, netns, res in added:
            invoke(binary, "DEL", dict(conf, prevResult=res), cid, netns, cni_path)
        out["burst_add"].append({"times": times, "failures": fails})
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
