"""Inside a sandbox without a network: the bridge from 127.0.0.1:PORT to Honk's egress proxy.

    python3 -I -S egress_forwarder.py PORT SOCKET -- COMMAND [ARG...]

Listens on 127.0.0.1:PORT (the sandbox's own loopback, its own network namespace), relays every
connection to the Unix socket SOCKET that the sandbox binds from Honk, and runs COMMAND: the
listener is up before COMMAND starts (no race), and the forwarder exits with COMMAND's status, so
it never outlives it (bubblewrap's pid namespace ends whatever is left). Without COMMAND it just
forwards until killed.

Standalone and stdlib-only on purpose: it runs with the sandbox's system python3, not Honk's
venv, so it imports nothing of Honk's.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading

CHUNK = 65_536
USAGE = "usage: egress_forwarder.py PORT SOCKET [-- COMMAND [ARG...]]"


def pump(source: socket.socket, sink: socket.socket) -> None:
    """Copy one direction until EOF, then half-close the other side."""
    try:
        while data := source.recv(CHUNK):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


def relay(client: socket.socket, path: str) -> None:
    upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        upstream.connect(path)
    except OSError as exc:
        print(f"egress forwarder: cannot reach the proxy: {exc}", file=sys.stderr)
        client.close()
        upstream.close()
        return
    back = threading.Thread(target=pump, args=(upstream, client), daemon=True)
    back.start()
    pump(client, upstream)
    back.join()
    client.close()
    upstream.close()


def serve(listener: socket.socket, path: str) -> None:
    while True:
        try:
            client, _ = listener.accept()
        except OSError:
            return
        threading.Thread(target=relay, args=(client, path), daemon=True).start()


def main(argv: list[str]) -> int:
    if len(argv) < 2 or (len(argv) > 2 and (argv[2] != "--" or len(argv) == 3)):
        print(USAGE, file=sys.stderr)
        return 2
    port, path, command = argv[0], argv[1], argv[3:]
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(("127.0.0.1", int(port)))
        listener.listen(128)
    except (OSError, ValueError, OverflowError) as exc:
        print(f"egress forwarder: cannot listen on 127.0.0.1:{port}: {exc}", file=sys.stderr)
        return 126
    if not command:
        serve(listener, path)
        return 0
    threading.Thread(target=serve, args=(listener, path), daemon=True).start()
    try:
        child = subprocess.Popen(command)  # inherits stdio; the listener is not inherited
    except OSError as exc:
        print(f"egress forwarder: cannot run {command[0]}: {exc}", file=sys.stderr)
        return 127
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda number, _frame: child.send_signal(number))
    code = child.wait()
    return 128 - code if code < 0 else code


if __name__ == "__main__":
    status = main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)  # no waiting on relay threads: the command is done
