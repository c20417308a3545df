# SPDX-License-Identifier: Apache-2.0
"""berth-agent's address pool: concurrency, crashes, checkpoints, reconciliation, sockets."""
import json
import os
import signal
import socket
import subprocess
import time

import pytest

from lab import Pod, wait_for


def spawn(node, pod, conf, command="ADD"):
    """Start the plugin as a runtime does, without waiting for it."""
    env = {"CNI_COMMAND": command, "CNI_CONTAINERID": pod.container_id, "CNI_NETNS": pod.ns.path,
           "CNI_IFNAME": "eth0", "CNI_ARGS": pod.args, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    p = node.ns.popen(os.path.join(node.lab.bin_dir, "berth-cni"), stdin=subprocess.PIPE,
                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    p.stdin.write(json.dumps(conf))
    p.stdin.close()
    return p


def collect(procs):
    results = []
    for p in procs:
        out = p.stdout.read()
        p.wait(timeout=60)
        results.append((p.returncode, json.loads(out) if out.strip() else None))
    return results


def pod_addresses(pods):
    """The addresses actually configured inside live pods: the kernel's truth."""
    seen = {}
    for pod in pods:
        if not pod.ns.exists():
            continue
        for link in pod.ns.json("ip", "-j", "-4", "addr", "show"):
            for a in link.get("addr_info", []):
                if a["local"].startswith("198.18."):
                    seen.setdefault(a["local"], []).append(pod.name)
    return seen


def test_100_concurrent_adds(make_node):
    node = make_node(pool="198.18.1.0/25")
    conf = node.plugin_conf()
    pods = [Pod(node, f"c{i}") for i in range(100)]
    results = collect([spawn(node, p, conf) for p in pods])
    failures = [r for r in results if r[0] != 0]
    assert not failures, failures[:3]
    ips = [r[1]["ips"][0]["address"] for r in results]
    assert len(set(ips)) == 100
    assert all(len(v) == 1 for v in pod_addresses(pods).values())
    assert node.berthctl_json("status")["pool"]["assigned"] == 100


def test_kill_9_during_add_del_storm(make_node):
    node = make_node(pool="198.18.1.0/26",
                     agent_args=("--reclaim-grace", "1", "--reconcile-interval", "1"))
    conf = node.plugin_conf()
    pods = [Pod(node, f"s{i}") for i in range(40)]
    procs = [spawn(node, p, conf) for p in pods]
    time.sleep(0.05)
    node.agent.send_signal(signal.SIGKILL)
    node.agent.wait()
    results = collect(procs)
    node.start_agent("--reclaim-grace", "1", "--reconcile-interval", "1")
    # As the kubelet does: a failed sandbox gets a DEL, and its netns is destroyed.
    live = []
    for pod, (code, out) in zip(pods, results):
        if code == 0:
            pod.result = out
            live.append(pod)
        else:
            assert out["code"] in (11, 5), out
            assert pod.cni("DEL", prev=False)[0] == 0
            pod.ns.delete()
    # Now a DEL storm over half of the survivors, with another kill -9 in the middle.
    doomed, live = live[::2], live[1::2]
    dels = []
    for pod in doomed:
        dels.append(spawn(node, pod, dict(conf, prevResult=pod.result), "DEL"))
    time.sleep(0.02)
    node.agent.send_signal(signal.SIGKILL)
    node.agent.wait()
    dres = collect(dels)
    assert all(code == 0 for code, _ in dres), [r for r in dres if r[0]]
    for pod in doomed:
        pod.ns.delete()
    node.start_agent("--reclaim-grace", "1", "--reconcile-interval", "1")

    # No duplicate: each live pod's address is its own, and what the agent holds.
    seen = pod_addresses(live)
    assert all(len(v) == 1 for v in seen.values()), seen
    assert len(seen) == len(live), (
        [p.name for p in live if p.ip not in seen], node.log())
    # No leak: once reconciled, the pool holds exactly the live pods' addresses.
    def settled():
        held = {p["ip"] for p in node.berthctl_json("pods")["pods"]}
        return held == set(seen)
    wait_for(settled, timeout=15, what="the pool to hold exactly the live pods")
    # And new pods never get a live address.
    fresh = [Pod(node, f"n{i}") for i in range(8)]
    for p in fresh:
        p.add()
    assert all(len(v) == 1 for v in pod_addresses(live + fresh).values())


def test_checkpoint_written_before_reply(node):
    pod = Pod(node, "durable")
    pod.add()
    with open(os.path.join(node.run_dir, "ipam.json")) as f:
        doc = json.load(f)
    assert [a["ip"] for a in doc["ipam"]["allocations"]] == [pod.ip]
    # A crash right after the reply loses nothing.
    node.agent.send_signal(signal.SIGKILL)
    node.agent.wait()
    node.start_agent()
    assert [p["ip"] for p in node.berthctl_json("pods")["pods"]] == [pod.ip]


def test_corrupt_checkpoint_refuses_then_recovers(node):
    pod = Pod(node, "survivor")
    pod.add()
    node.stop_agent()
    path = os.path.join(node.run_dir, "ipam.json")
    data = open(path).read()
    with open(path, "w") as f:
        f.write(data[: len(data) // 2])  # truncated mid-write by a broken disk
    with pytest.raises(RuntimeError):
        node.start_agent()
    assert node.agent.returncode != 0
    log = node.log()
    assert "corrupt" in log and "--recover-ipam" in log
    assert open(path).read() == data[: len(data) // 2], "the evidence is left alone"

    node.start_agent("--recover-ipam")
    pods = node.berthctl_json("pods")["pods"]
    assert [p["ip"] for p in pods] == [pod.ip], "the live pod is adopted from its host route"
    assert any(n.startswith("ipam.json.corrupt-") for n in os.listdir(node.run_dir))
    other = Pod(node, "newcomer")
    other.add()
    assert other.ip != pod.ip
    # The runtime's DEL of the adopted pod (by its prevResult address) releases it.
    assert pod.cni("DEL")[0] == 0
    assert [p["ip"] for p in node.berthctl_json("pods")["pods"]] == [other.ip]


def test_reclaims_address_when_veth_is_gone(make_node):
    node = make_node(agent_args=("--reclaim-grace", "1", "--reconcile-interval", "1"))
    pod = Pod(node, "vanished")
    pod.add()
    pod.ns.delete()  # the netns died without a DEL reaching us
    wait_for(lambda: node.berthctl_json("pods")["pods"] == [], timeout=10,
             what="the address to be reclaimed")
    assert node.berthctl_json("status")["counters"]["reclaimed"] == 1
    assert "reclaimed the address of default/vanished" in node.log()


def test_removes_veth_that_outlives_its_allocation(make_node):
    node = make_node(agent_args=("--reconcile-interval", "1"))
    pod = Pod(node, "lingering")
    pod.add()
    veth = pod.result["interfaces"][0]["name"]
    assert pod.cni("DEL")[0] == 0
    assert veth in node.ns.run("ip", "link").stdout  # DEL leaves it for the netns to take
    wait_for(lambda: veth not in node.ns.run("ip", "link").stdout, timeout=10,
             what="the agent to remove the stale veth")


def test_cooldown_before_reuse(make_node):
    node = make_node(pool="198.18.1.7/32", agent_args=("--cooldown", "2"))
    a = Pod(node, "first")
    a.add()
    assert a.cni("DEL")[0] == 0
    b = Pod(node, "second")
    code, out, _ = node.cni("ADD", node.plugin_conf(), b.container_id, b.ns.path, "eth0", b.args)
    assert code == 1 and out["code"] == 11 and "cooling" in out["msg"], out
    assert node.berthctl_json("status")["pool"]["cooling"] == 1
    wait_for(lambda: node.cni("ADD", node.plugin_conf(), b.container_id, b.ns.path, "eth0",
                              b.args)[0] == 0, timeout=5, interval=0.5, what="cooldown to end")


def exchange(path, payload, shutdown=True, timeout=5):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    s.sendall(payload)
    if shutdown:
        s.shutdown(socket.SHUT_WR)
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    return json.loads(data)


def test_socket_rejects_bad_requests_and_keeps_serving(node):
    sock = os.path.join(node.run_dir, "cni.sock")
    assert oct(os.stat(sock).st_mode & 0o777) == "0o600"
    # The node's netns has its own view, but the socket file is on the shared filesystem.
    r = exchange(sock, b"{this is not json")
    assert r["ok"] is False and r["code"] == 6
    r = exchange(sock, json.dumps({"op": "add", "network": "berth"}).encode())
    assert r["ok"] is False and "containerID" in r["error"]
    r = exchange(sock, b'{"op":"add","op":"del"}')
    assert r["ok"] is False
    big = b'{"op":"ready","pad":"' + b"x" * (2 << 20) + b'"}'
    try:
        r = exchange(sock, big)
        assert r["ok"] is False and "exceeds" in r["error"]
    except (BrokenPipeError, ConnectionResetError):
        pass  # the agent may stop reading first: either way it does not buffer 2 MiB
    # A slow client holding a half-sent request blocks nobody.
    slow = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    slow.connect(sock)
    slow.sendall(b'{"op":"re')
    t = time.monotonic()
    Pod(node, "unblocked").add()
    assert time.monotonic() - t < 2
    slow.close()
    assert node.agent.poll() is None
    assert node.berthctl_json("status")["counters"]["badRequests"] >= 3


def test_non_root_peer_is_refused(node):
    sock = os.path.join(node.run_dir, "cni.sock")
    for d in (node.lab.tmp, os.path.dirname(node.run_dir), node.run_dir):
        os.chmod(d, 0o755)
    os.chmod(sock, 0o666)  # even if the mode is loosened, the peer's uid is checked

    def as_nobody():
        os.setgid(65534)
        os.setuid(65534)
    code = ("import socket,sys;s=socket.socket(socket.AF_UNIX);s.connect(sys.argv[1]);"
            "s.sendall(b'{\"op\":\"ready\"}');s.shutdown(1);print(s.recv(4096).decode())")
    r = subprocess.run(["/usr/bin/python3", "-c", code, sock], capture_output=True, text=True,
                       preexec_fn=as_nobody, timeout=10)
    assert r.returncode == 0, r.stderr
    reply = json.loads(r.stdout)
    assert reply["ok"] is False and "permission denied" in reply["error"]


def test_sigterm_leaves_pods_working(node):
    a, b = Pod(node, "a"), Pod(node, "b")
    a.add()
    b.add()
    assert node.stop_agent(signal.SIGTERM) == 0
    a.ns.run("ping", "-c", "1", "-W", "2", b.ip)
    assert os.path.exists(os.path.join(node.conf_dir, "10-berth.conflist"))
    assert not os.path.exists(os.path.join(node.run_dir, "cni.sock"))
    node.start_agent()
    assert sorted(p["pod"] for p in node.berthctl_json("pods")["pods"]) == ["a", "b"]
    a.ns.run("ping", "-c", "1", "-W", "2", b.ip)


def test_conflist_and_berthctl_tables(node):
    cl = node.conflist()
    assert cl["name"] == "berth" and cl["plugins"][0]["type"] == "berth-cni"
    assert cl["plugins"][0]["agentSocket"] == os.path.join(node.run_dir, "cni.sock")
    assert [p["type"] for p in cl["plugins"]] == ["berth-cni", "portmap"]
    pod = Pod(node, "shown", k8s_ns="shop")
    pod.add()
    st = node.berthctl("status").stdout
    assert "Ready:       yes" in st and "size 16  free 15  assigned 1  cooling 0" in st
    table = node.berthctl("pods").stdout.splitlines()
    assert table[0].split()[:4] == ["NAMESPACE", "POD", "IP", "CONTAINER"]
    assert table[1].split()[:3] == ["shop", "shown", pod.ip]
    r = node.berthctl("frobnicate", check=False)
    assert r.returncode == 2 and "unknown command" in r.stderr


def test_agent_rejects_bad_flags(lab, fabric):
    from lab import Node
    n = Node(lab, fabric, "198.18.0.10", "198.0.0.0/8")
    with pytest.raises(RuntimeError):
        n.start_agent()
    assert "prefix shorter than /16" in n.log()
    n.pool = "198.18.1.1/28"
    with pytest.raises(RuntimeError):
        n.start_agent()
    assert "host bits set (did you mean 198.18.1.0/28?)" in n.log()
    n.pool = "198.18.1.0/28@nosuchif"
    with pytest.raises(RuntimeError):
        n.start_agent()
    assert "pool interface nosuchif" in n.log()
