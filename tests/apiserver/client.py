# SPDX-License-Identifier: Apache-2.0
"""Small stdlib clients for tests that talk to KubeAPIServer directly.

ApiClient: one-shot requests (http.client) -> (status, headers, body).
RawWatch:  a watch read at the wire level (own socket, own chunk parser), so a
           test can tell a clean end (terminating 0-chunk) from a cut stream and
           see every line exactly as sent, garbage included.
"""
import http.client
import json
import queue
import socket
import ssl
import threading

TIMEOUT = object()  # RawWatch.next(): nothing arrived in time
END = object()      # RawWatch.next(): the stream is over (see .end)


def _ssl_context(api, client_cert=False):
    ctx = ssl.create_default_context(cafile=api.ca_file)
    if client_cert:
        ctx.load_cert_chain(api.client_cert, api.client_key)
    return ctx


class ApiClient:
    def __init__(self, api, token="default", client_cert=False, timeout=30):
        self.api = api
        self.token = api.token if token == "default" else token
        self.client_cert = client_cert
        self.timeout = timeout

    def request(self, path, accept="application/json", headers=None):
        if self.api.tls:
            c = http.client.HTTPSConnection(self.api.host, self.api.port, timeout=self.timeout,
                                            context=_ssl_context(self.api, self.client_cert))
        else:
            c = http.client.HTTPConnection(self.api.host, self.api.port, timeout=self.timeout)
        h = {"Accept": accept}
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        h.update(headers or {})
        try:
            c.request("GET", path, headers=h)
            r = c.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            c.close()

    def json(self, path, accept="application/json", expect=200):
        status, _, body = self.request(path, accept)
        assert status == expect, f"GET {path}: {status} {body[:500]!r}"
        return json.loads(body)

    def list_all(self, path, limit):
        """Page through a list with limit/continue; returns (pages, items)."""
        pages, items, token = [], [], None
        while True:
            sep = "&" if "?" in path else "?"
            q = f"{path}{sep}limit={limit}" + (f"&continue={token}" if token else "")
            page = self.json(q)
            pages.append(page)
            items += page["items"]
            token = page["metadata"].get("continue")
            if not token:
                return pages, items


class RawWatch:
    """GET path on a raw (TLS) socket; a thread parses HTTP/1.1 chunks into lines.

    .status/.headers once constructed; .next(timeout) -> bytes line | TIMEOUT | END;
    .end is None while open, then "clean" (0-chunk seen) or "cut" (EOF/reset first).
    """

    def __init__(self, api, path, token="default", timeout=30):
        self.api = api
        self.lines = queue.Queue()
        self.end = None
        raw = socket.create_connection((api.host, api.port), timeout=timeout)
        self.sock = _ssl_context(api).wrap_socket(raw, server_hostname=api.host) \
            if api.tls else raw
        self.sock.settimeout(None)
        tok = api.token if token == "default" else token
        req = f"GET {path} HTTP/1.1\r\nHost: {api.host}:{api.port}\r\nAccept: application/json\r\n"
        if tok:
            req += f"Authorization: Bearer {tok}\r\n"
        self.sock.sendall((req + "\r\n").encode())
        self.f = self.sock.makefile("rb")
        status_line = self.f.readline().decode()
        self.status = int(status_line.split()[1])
        self.headers = {}
        while True:
            line = self.f.readline().decode().rstrip("\r\n")
            if not line:
                break
            k, v = line.split(":", 1)
            self.headers[k.strip().lower()] = v.strip()
        if self.headers.get("transfer-encoding") == "chunked":
            self.thread = threading.Thread(target=self._read_chunks, daemon=True)
        else:
            self.thread = threading.Thread(target=self._read_body, daemon=True)
        self.thread.start()

    def _read_body(self):
        n = int(self.headers.get("content-length", "0"))
        body = self.f.read(n)
        self.lines.put(body)
        self.end = "clean"
        self.lines.put(END)

    def _read_chunks(self):
        try:
            while True:
                size_line = self.f.readline()
                if not size_line.endswith(b"\r\n"):
                    break  # EOF in the middle of the framing: cut
                size = int(size_line.split(b";")[0], 16)
                if size == 0:
                    self.f.readline()  # the empty trailer line
                    self.end = "clean"
                    break
                data = self.f.read(size)
                if len(data) < size or self.f.read(2) != b"\r\n":
                    break
                for line in data.splitlines():
                    if line:
                        self.lines.put(line)
        except (OSError, ValueError):
            pass
        if self.end is None:
            self.end = "cut"
        self.lines.put(END)

    def next(self, timeout=5):
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            return TIMEOUT

    def event(self, timeout=5):
        """The next line as a decoded event, or TIMEOUT / END."""
        line = self.next(timeout)
        return line if line is TIMEOUT or line is END else json.loads(line)

    def events_until_end(self, timeout=10):
        out = []
        while True:
            e = self.event(timeout)
            if e is END:
                return out
            assert e is not TIMEOUT, f"stream did not end within {timeout}s; got {out}"
            out.append(e)

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.thread.join(timeout=5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
