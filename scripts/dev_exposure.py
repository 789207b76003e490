#!/usr/bin/env python3
"""`make dev` is reachable from this machine only (run by scripts/dev-smoke.sh against a running `make dev`).

The API (`cargo lambda watch`) serves a known signing secret's tokens and the unauthenticated
`/api/cron/execute`, and the dashboard page's `/dev/config` hands out a superadmin token, so:
- every socket listening on the API and page ports is bound to a loopback address (read from
  /proc/net/tcp and tcp6), and, where the machine has another address, a connection to it is refused;
- the page server answers only `Host: localhost:<port>` or `127.0.0.1:<port>`: any other Host (a DNS
  rebinding page in the developer's browser, which sends its own name) gets a 421 without the tokens.

  scripts/dev_exposure.py --api-port 4001 --web-port 4000
"""
import argparse
import http.client
import ipaddress
import socket
import sys

errors = []


def check(ok, message):
    if not ok:
        errors.append(message)


def proc_address(hex_address):
    """An address of /proc/net/tcp{,6}: 32-bit words in host (little-endian) order."""
    raw = bytes.fromhex(hex_address)
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return ipaddress.ip_address(words)


def listeners(port):
    """The addresses listening on TCP `port`."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            address, local_port = fields[1].split(":")
            if fields[3] == "0A" and int(local_port, 16) == port:  # 0A: LISTEN
                found.append(proc_address(address))
    return found


def is_loopback(ip):
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or (mapped is not None and mapped.is_loopback)


def outward_address():
    """This machine's address towards the outside, if it has one (a UDP connect sends nothing)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: only picks the route
            address = s.getsockname()[0]
    except OSError:
        return None
    return None if ipaddress.ip_address(address).is_loopback else address


def refuses_connections(address, port):
    try:
        with socket.create_connection((address, port), timeout=2):
            return False
    except OSError:
        return True


def get(port, host, path):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.putrequest("GET", path, skip_host=True)
        if host is not None:
            connection.putheader("Host", host)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        connection.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--api-port", type=int, required=True)
    parser.add_argument("--web-port", type=int, required=True)
    args = parser.parse_args()

    outward = outward_address()
    for name, port in (("API", args.api_port), ("page", args.web_port)):
        bound = listeners(port)
        check(bound, f"{name}: nothing listens on port {port}")
        exposed = [str(ip) for ip in bound if not is_loopback(ip)]
        check(not exposed, f"{name}: port {port} listens on {exposed} (every interface), not only on loopback")
        if outward:
            check(refuses_connections(outward, port), f"{name}: {outward}:{port} accepts connections")

    port = args.web_port
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"LOCALHOST:{port}"):
        status, _ = get(port, host, "/dev/config")
        check(status == 200, f"page: Host {host} got {status}, expected 200")
    for host in (f"rebind.example:{port}", "localhost", f"localhost:{port + 1}", f"127.0.0.2:{port}",
                 f"localhost.rebind.example:{port}", None):
        status, body = get(port, host, "/dev/config")
        shown = host or "(none)"
        check(status in (403, 421), f"page: Host {shown} got {status}, expected 421")
        check("superadmin" not in body and "eyJ" not in body, f"page: Host {shown} was handed the tokens")

    if errors:
        print("dev-exposure:", *errors, sep="\n  ", file=sys.stderr)
        sys.exit(1)
    print(f"dev-exposure: API and page on loopback only{'' if outward else ' (no other address to try)'};"
          " the page answers only Host localhost/127.0.0.1")


if __name__ == "__main__":
    main()
