#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Test traffic: a server that answers with its name and the client's address,
and a probe that says who answered, or whether it was refused or dropped.

  netprobe.py serve NAME PORT [PORT...]   TCP and UDP on each port, until killed
  netprobe.py probe tcp|udp HOST PORT [--timeout S] [--count N]
      one line per attempt: "reply NAME SEEN-SOURCE" | "refused" | "timeout"
  netprobe.py stream HOST PORT SECONDS    one TCP connection, a message every 50 ms;
      prints "ok N" if every message got its echo, else "broken after N"
"""
import selectors
import socket
import sys
import time


def serve(name, ports):
    sel = selectors.DefaultSelector()
    for port in ports:
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        t.bind(("0.0.0.0", port))
        t.listen(128)
        t.setblocking(False)
        sel.register(t, selectors.EVENT_READ, "tcp")
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("0.0.0.0", port))
        sel.register(u, selectors.EVENT_READ, "udp")
    print("ready", flush=True)
    while True:
        for key, _ in sel.select():
            s = key.fileobj
            if key.data == "tcp":
                c, addr = s.accept()
                c.setblocking(True)
                sel.register(c, selectors.EVENT_READ, ("conn", addr))
            elif key.data == "udp":
                data, addr = s.recvfrom(2048)
                s.sendto(f"{name} {addr[0]}".encode(), addr)
            else:
                try:
                    data = s.recv(2048)
                except OSError:
                    data = b""
                if not data:
                    sel.unregister(s)
                    s.close()
                elif data.startswith(b"echo"):
                    s.sendall(data)  # the stream mode: echo back
                else:
                    s.sendall(f"{name} {key.data[1][0]}".encode())
                    sel.unregister(s)
                    s.close()


def probe_once(proto, host, port, timeout):
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    s = socket.socket(socket.AF_INET, kind)
    s.settimeout(timeout)
    try:
        s.connect((host, port))
        s.send(b"hello")
        data = s.recv(2048)
        return "reply " + data.decode()
    except ConnectionRefusedError:
        return "refused"
    except (socket.timeout, TimeoutError):
        return "timeout"
    except OSError as e:
        return f"error {e.errno}"
    finally:
        s.close()


def stream(host, port, seconds):
    s = socket.create_connection((host, port), timeout=3)
    n = 0
    end = time.monotonic() + seconds
    try:
        while time.monotonic() < end:
            msg = f"echo {n}\n".encode()
            s.sendall(msg)
            got = b""
            while len(got) < len(msg):
                chunk = s.recv(len(msg) - len(got))
                if not chunk:
                    raise OSError("closed")
                got += chunk
            if got != msg:
                raise OSError("garbled")
            n += 1
            time.sleep(0.05)
    except OSError:
        print(f"broken after {n}")
        return
    print(f"ok {n}")


def main(argv):
    if argv[1] == "serve":
        serve(argv[2], [int(p) for p in argv[3:]])
    elif argv[1] == "probe":
        timeout, count = 1.0, 1
        args = argv[2:]
        if "--timeout" in args:
            i = args.index("--timeout")
            timeout = float(args[i + 1])
            del args[i:i + 2]
        if "--count" in args:
            i = args.index("--count")
            count = int(args[i + 1])
            del args[i:i + 2]
        for _ in range(count):
            print(probe_once(args[0], args[1], int(args[2]), timeout), flush=True)
    elif argv[1] == "stream":
        stream(argv[2], int(argv[3]), float(argv[4]))


if __name__ == "__main__":
    try:
        main(sys.argv)
    except KeyboardInterrupt:  # Ctrl-C reaches the whole process group: leave quietly
        sys.exit(130)
