# SPDX-License-Identifier: Apache-2.0
"""kube-proxy's rulesets as text, for the same synthetic cluster nft_driver "gen" builds.

The generator mirrors tests/drivers/nft_driver.c gen_service(): service i is
ns{i % 100}/svc{i}, port "http" tcp/80 on ClusterIP 198.19.0.1 + i, with eps
endpoints 198.18.128.0 + ((i * eps + e) % 32000) port 8080 (198.18.128.0/17).

nftables mode follows kubernetes pkg/proxy/nftables/proxier.go (setupNFTables,
ensureChain = add + flush, writeServiceToEndpointRules, the endpoint chains);
iptables mode follows pkg/proxy/iptables/proxier.go (KUBE-SERVICES -> KUBE-SVC-*
with statistic-mode random probabilities -> KUBE-SEP-* with KUBE-MARK-MASQ).
Only the parts this cluster exercises are written: ClusterIP services, Cluster
traffic policy, no affinity, no NodePorts/LoadBalancers.
"""
import base64
import hashlib
import ipaddress

CIP_BASE = int(ipaddress.IPv4Address("198.19.0.1"))
EP_BASE = int(ipaddress.IPv4Address("198.18.128.0"))
MOVED_BASE = int(ipaddress.IPv4Address("198.18.255.0"))  # gen_change moves an endpoint here
PORT, TARGET_PORT, PORT_NAME = 80, 8080, "http"
MASQ_MARK = "0x4000"


def _ip(n):
    return str(ipaddress.IPv4Address(n))


def cluster_ip(i, base=CIP_BASE):
    return _ip(base + i)


def endpoints(i, eps):
    return [_ip(EP_BASE + (i * eps + e) % 32000) for e in range(eps)]


def svc_name(i):
    return f"ns{i % 100}", f"svc{i}"


def _b32(s):
    return base64.b32encode(hashlib.sha256(s.encode()).digest()).decode()


def _hash_trunc(name):
    name = _b32(name)[:8] + "-" + name
    return name if len(name) <= 240 else name[:237] + "..."


def nft_service_chain(i):
    ns, name = svc_name(i)
    return "service-" + _hash_trunc(f"{ns}/{name}/tcp/{PORT_NAME}")


def nft_endpoint_chain(i, ip):
    ns, name = svc_name(i)
    return "endpoint-" + _hash_trunc(f"{ns}/{name}/tcp/{PORT_NAME}__{ip}/{TARGET_PORT}")


T = "ip kube-proxy"


def nft_base(pod_cidr, service_cidr):
    """setupNFTables(): the table, its sets/maps, base chains at kube-proxy's priorities."""
    L = [f'add table {T} {{ comment "rules for kube-proxy" ; }}']
    for name, typ, comment in (
            ("cluster-ips", "ipv4_addr", "Active ClusterIPs"),
            ("nodeport-ips", "ipv4_addr", "IPs that accept NodePort traffic")):
        L.append(f'add set {T} {name} {{ type {typ} ; comment "{comment}" ; }}')
    for name, typ, comment in (
            ("firewall-ips", "ipv4_addr . inet_proto . inet_service : verdict",
             "destinations that are subject to LoadBalancerSourceRanges"),
            ("no-endpoint-nodeports", "inet_proto . inet_service : verdict",
             "vmap to drop or reject packets to service nodeports with no endpoints"),
            ("no-endpoint-services", "ipv4_addr . inet_proto . inet_service : verdict",
             "vmap to drop or reject packets to services with no endpoints"),
            ("service-ips", "ipv4_addr . inet_proto . inet_service : verdict",
             "ClusterIP, ExternalIP and LoadBalancer IP traffic"),
            ("service-nodeports", "inet_proto . inet_service : verdict", "NodePort traffic")):
        L.append(f'add map {T} {name} {{ type {typ} ; comment "{comment}" ; }}')
    base = {
        "filter-prerouting-pre-dnat": "type filter hook prerouting priority -110 ;",
        "filter-output-pre-dnat": "type filter hook output priority -110 ;",
        "filter-forward": "type filter hook forward priority 0 ;",
        "filter-input": "type filter hook input priority 0 ;",
        "filter-output": "type filter hook output priority 0 ;",
        "filter-output-post-dnat": "type filter hook output priority -90 ;",
        "nat-output": "type nat hook output priority -100 ;",
        "nat-postrouting": "type nat hook postrouting priority 100 ;",
        "nat-prerouting": "type nat hook prerouting priority -100 ;",
    }
    for c in ("cluster-ips-check", "firewall-check", "mark-for-masquerade", "masquerading",
              "nodeport-endpoints-check", "reject-chain", "services", "service-endpoints-check",
              *base):
        spec = f" {{ {base[c]} }}" if c in base else ""
        L.append(f"add chain {T} {c}{spec}")
        L.append(f"flush chain {T} {c}")
    for m in ("firewall-ips", "no-endpoint-services", "no-endpoint-nodeports", "service-ips",
              "service-nodeports"):
        L.append(f"flush map {T} {m}")
    rules = [
        ("cluster-ips-check", 'ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"'),
        ("cluster-ips-check", f'ip daddr {{ {service_cidr} }} drop comment "Drop traffic to unallocated ClusterIPs"'),
        ("filter-prerouting-pre-dnat", "ct state new jump firewall-check"),
        ("filter-forward", "ct state new jump service-endpoints-check"),
        ("filter-forward", "ct state new jump cluster-ips-check"),
        ("filter-input", "ct state new jump nodeport-endpoints-check"),
        ("filter-input", "ct state new jump service-endpoints-check"),
        ("filter-output", "ct state new jump service-endpoints-check"),
        ("filter-output-pre-dnat", "ct state new jump firewall-check"),
        ("filter-output-post-dnat", "ct state new jump cluster-ips-check"),
        ("firewall-check", "ip daddr . meta l4proto . th dport vmap @firewall-ips"),
        ("mark-for-masquerade", f"mark set mark or {MASQ_MARK}"),
        ("masquerading", f"mark and {MASQ_MARK} == 0 return"),
        ("masquerading", f"mark set mark xor {MASQ_MARK}"),
        ("masquerading", "masquerade fully-random"),
        ("nat-output", "jump services"),
        ("nat-postrouting", "jump masquerading"),
        ("nat-prerouting", "jump services"),
        ("nodeport-endpoints-check", "ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports"),
        ("reject-chain", "reject"),
        ("services", "ip daddr . meta l4proto . th dport vmap @service-ips"),
        ("services", "ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports"),
        ("service-endpoints-check", "ip daddr . meta l4proto . th dport vmap @no-endpoint-services"),
        ("service-endpoints-check", "ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports"),
    ]
    L += [f"add rule {T} {c} {r}" for c, r in rules]
    return L


def _nft_service(i, eps_ips, pod_cidr, cip_base=CIP_BASE):
    """One service's chains as a sync writes them (ensureChain: add + flush, then rules)."""
    svc = nft_service_chain(i)
    L = []
    for ip in eps_ips:
        ec = nft_endpoint_chain(i, ip)
        L += [f"add chain {T} {ec}", f"flush chain {T} {ec}",
              f"add rule {T} {ec} ip saddr {ip} jump mark-for-masquerade",
              f"add rule {T} {ec} meta l4proto tcp dnat to {ip}:{TARGET_PORT}"]
    vmap = " , ".join(f"{k} : goto {nft_endpoint_chain(i, ip)}" for k, ip in enumerate(eps_ips))
    L += [f"add chain {T} {svc}", f"flush chain {T} {svc}",
          f"add rule {T} {svc} ip daddr {cluster_ip(i, cip_base)} tcp dport {PORT} ip saddr != {pod_cidr} jump mark-for-masquerade",
          f"add rule {T} {svc} numgen random mod {len(eps_ips)} vmap {{ {vmap} }}"]
    return L


def _nft_services(lo, hi, eps, pod_cidr, cip_base=CIP_BASE):
    L = []
    for i in range(lo, hi):
        L += _nft_service(i, endpoints(i, eps), pod_cidr, cip_base)
        cip = cluster_ip(i, cip_base)
        L.append(f"add element {T} cluster-ips {{ {cip} }}")
        L.append(f"add element {T} service-ips {{ {cip} . tcp . {PORT} : goto {nft_service_chain(i)} }}")
    return L


def nft_full(n, eps, pod_cidr, service_cidr):
    """The transaction of kube-proxy's first (full) sync into an empty netns, for `nft -f`."""
    return "\n".join(nft_base(pod_cidr, service_cidr) + _nft_services(0, n, eps, pod_cidr)) + "\n"


def nft_full_chunks(n, eps, pod_cidr, service_cidr, chunk=1000, cip_base=CIP_BASE):
    """The same ruleset as nft_full() in several smaller transactions: a quick way to put
    kube-proxy's state in place (the kernel's cost grows with the square of a
    transaction's anonymous sets), for measuring what comes after the full sync.
    cip_base moves the ClusterIPs (the data-path bench routes them apart from berth's)."""
    yield "\n".join(nft_base(pod_cidr, service_cidr)) + "\n"
    for lo in range(0, n, chunk):
        yield "\n".join(_nft_services(lo, min(n, lo + chunk), eps, pod_cidr, cip_base)) + "\n"


def nft_change(i, eps, e, pod_cidr):
    """One endpoint of service i moved (as nft_driver gen_change does): the new endpoint
    chain, the service chain flushed and rewritten, the old endpoint chain deleted.

    kube-proxy would only flush the old chain here and delete it in a later sync
    (a second later); deleting now puts that cost in this transaction instead.
    Nothing else of the 10k services is touched (partial sync, as kube-proxy >= 1.31).
    """
    ips = endpoints(i, eps)
    old = ips[e]
    ips[e] = _ip(MOVED_BASE + e + 1)
    svc = nft_service_chain(i)
    new_ec = nft_endpoint_chain(i, ips[e])
    vmap = " , ".join(f"{k} : goto {nft_endpoint_chain(i, ip)}" for k, ip in enumerate(ips))
    L = [f"add chain {T} {new_ec}", f"flush chain {T} {new_ec}",
         f"add rule {T} {new_ec} ip saddr {ips[e]} jump mark-for-masquerade",
         f"add rule {T} {new_ec} meta l4proto tcp dnat to {ips[e]}:{TARGET_PORT}",
         f"add chain {T} {svc}", f"flush chain {T} {svc}",
         f"add rule {T} {svc} ip daddr {cluster_ip(i)} tcp dport {PORT} ip saddr != {pod_cidr} jump mark-for-masquerade",
         f"add rule {T} {svc} numgen random mod {len(ips)} vmap {{ {vmap} }}",
         f"flush chain {T} {nft_endpoint_chain(i, old)}",
         f"delete chain {T} {nft_endpoint_chain(i, old)}"]
    return "\n".join(L) + "\n"


# ---- iptables mode ----

def _ipt_svc(i):
    ns, name = svc_name(i)
    return "KUBE-SVC-" + _b32(f"{ns}/{name}:{PORT_NAME}tcp")[:16]


def _ipt_sep(i, ip):
    ns, name = svc_name(i)
    return "KUBE-SEP-" + _b32(f"{ns}/{name}:{PORT_NAME}tcp{ip}:{TARGET_PORT}")[:16]


def iptables_full(n, eps, pod_cidr):
    """iptables-restore input of kube-proxy's iptables mode (full sync, filter + nat)."""
    F = ["*filter"]
    for c in ("KUBE-NODEPORTS", "KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES", "KUBE-FORWARD",
              "KUBE-PROXY-FIREWALL", "KUBE-FIREWALL"):
        F.append(f":{c} - [0:0]")
    F += [
        '-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
        '-A INPUT -m comment --comment "kubernetes health check service ports" -j KUBE-NODEPORTS',
        '-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES',
        '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
        '-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD',
        '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        '-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES',
        '-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j KUBE-PROXY-FIREWALL',
        '-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        '-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP',
        f'-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark {MASQ_MARK}/{MASQ_MARK} -j ACCEPT',
        '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
        "COMMIT",
    ]
    N = ["*nat"]
    chains = ["KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-POSTROUTING", "KUBE-MARK-MASQ"]
    rules = [
        '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
        f"-A KUBE-POSTROUTING -m mark ! --mark {MASQ_MARK}/{MASQ_MARK} -j RETURN",
        f"-A KUBE-POSTROUTING -j MARK --xor-mark {MASQ_MARK}",
        '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully',
        f"-A KUBE-MARK-MASQ -j MARK --or-mark {MASQ_MARK}",
    ]
    svc_rules, sep_rules = [], []
    for i in range(n):
        ns, name = svc_name(i)
        spn = f"{ns}/{name}:{PORT_NAME}"
        cip, svc = cluster_ip(i), _ipt_svc(i)
        ips = endpoints(i, eps)
        chains.append(svc)
        rules.append(f'-A KUBE-SERVICES -m comment --comment "{spn} cluster IP" -m tcp -p tcp -d {cip}/32 --dport {PORT} -j {svc}')
        svc_rules.append(f'-A {svc} -m comment --comment "{spn} cluster IP" -m tcp -p tcp -d {cip}/32 --dport {PORT} ! -s {pod_cidr} -j KUBE-MARK-MASQ')
        for k, ip in enumerate(ips):
            sep = _ipt_sep(i, ip)
            chains.append(sep)
            left = len(ips) - k
            prob = f"-m statistic --mode random --probability {1.0 / left:0.10f} " if left > 1 else ""
            svc_rules.append(f'-A {svc} -m comment --comment "{spn} -> {ip}:{TARGET_PORT}" {prob}-j {sep}')
            sep_rules.append(f'-A {sep} -m comment --comment {spn} -s {ip}/32 -j KUBE-MARK-MASQ')
            sep_rules.append(f'-A {sep} -m comment --comment {spn} -m tcp -p tcp -j DNAT --to-destination {ip}:{TARGET_PORT}')
    rules.append('-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS')
    N += [f":{c} - [0:0]" for c in chains] + rules + svc_rules + sep_rules + ["COMMIT"]
    return "\n".join(F + N) + "\n"
