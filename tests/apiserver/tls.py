# SPDX-License-Identifier: Apache-2.0
"""A throwaway PKI for the test API server, made with the openssl CLI.

make_pki(dir) writes, unless they are already there:
  ca.crt ca.key           a self-signed CA
  server.crt server.key   kube-apiserver's serving cert: SAN IP:127.0.0.1, DNS:localhost
                          and any extra IPs / names asked for
  client.crt client.key   a client cert signed by the CA (CN=system:node:berth,
                          O=system:nodes), for client-certificate authentication
EC P-256 keys: generating them takes milliseconds.
"""
import os
import subprocess

FILES = ("ca.crt", "ca.key", "server.crt", "server.key", "client.crt", "client.key")


def _openssl(*args, cwd):
    r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed: {r.stderr.strip()}")


def _leaf(d, name, subj, ext_lines):
    """A key and a cert for `name`, signed by the CA in d."""
    with open(os.path.join(d, f"{name}.ext"), "w") as f:
        f.write("\n".join(ext_lines) + "\n")
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subj, cwd=d)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-set_serial", "0x" + os.urandom(12).hex(), "-days", "3650",
             "-extfile", f"{name}.ext", "-out", f"{name}.crt", cwd=d)
    for tmp in (f"{name}.csr", f"{name}.ext"):
        os.unlink(os.path.join(d, tmp))


def make_pki(d, ips=(), names=()):
    """Create the CA, server and client certs in directory d (kept if present)."""
    os.makedirs(d, exist_ok=True)
    if all(os.path.exists(os.path.join(d, f)) for f in FILES):
        return d
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "3650",
             "-subj", "/CN=berth-test-ca",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    san = ",".join([f"IP:{ip}" for ip in ("127.0.0.1", *ips)] +
                   [f"DNS:{n}" for n in ("localhost", "kubernetes", "kubernetes.default",
                                         "kubernetes.default.svc", *names)])
    _leaf(d, "server", "/CN=kube-apiserver", [
        "basicConstraints=critical,CA:FALSE",
        "keyUsage=critical,digitalSignature,keyEncipherment",
        "extendedKeyUsage=serverAuth",
        "subjectKeyIdentifier=hash",
        "authorityKeyIdentifier=keyid",
        f"subjectAltName={san}"])
    _leaf(d, "client", "/O=system:nodes/CN=system:node:berth", [
        "basicConstraints=critical,CA:FALSE",
        "keyUsage=critical,digitalSignature,keyEncipherment",
        "extendedKeyUsage=clientAuth",
        "subjectKeyIdentifier=hash",
        "authorityKeyIdentifier=keyid"])
    for f in FILES:
        if f.endswith(".key"):
            os.chmod(os.path.join(d, f), 0o600)
    return d
