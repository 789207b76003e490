#!/usr/bin/env python3
"""The dev dashboard page's web server (`make dev`, http://localhost:4000/dashboard). Standard library only.

Serves web/dashboard/ under /dashboard/, forwards /api/* to the functions (`cargo lambda watch` on
--api-port) so that the page and the API share one origin and no CORS is involved (a deployment's CORS
is API Gateway's: AllowedOrigins in template.yaml), and answers three dev-only routes the page needs,
none of which exists in the deployed stack:

  *   /api/...         forwarded as is: method, path and query, headers (Authorization among them), body;
                       the API's status, headers and body come back unchanged (a 502 when it is down)
  GET /dev/config      {"tokens": {"admin": ..., "superadmin": ..., "manager": ..., "employee": ...}}, read from the
                       token files `make dev` writes (dev tokens: worthless outside this machine)
  GET /dev/warm-runs   the last rows of cache_warm_run  (`devtools warm-runs`)
  GET /dev/tenants     the tenants, for the superadmin's picker  (`devtools tenants`)
  GET /dev/scopes      each tenant's teams and employees, for the scope picker  (`devtools scopes`)

Listens on 127.0.0.1 only, and answers only requests for `Host: localhost:<port>` or `127.0.0.1:<port>`
(others get a 421): it hands out tokens, and a web page whose name was rebound to 127.0.0.1 would
otherwise read them from the developer's own browser.

  scripts/dev_web.py --port 4000 --api-port 4001 --state-dir .dev --devtools target/debug/devtools
"""

import argparse
import http.client
import json
import mimetypes
import subprocess
import sys
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE_DIR = ROOT / "web" / "dashboard"
DEVTOOLS_TIMEOUT_SECONDS = 10
# `cargo lambda watch` compiles a function on its first request: minutes on a cold machine.
API_TIMEOUT_SECONDS = 900
# Headers of one connection, not of the request or response (RFC 9110, 7.6.1); http.client and this
# server set their own framing.
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
}
# send_response() writes its own.
OWN_RESPONSE_HEADERS = {"server", "date"}


def make_handler(args):
    allowed_hosts = {f"localhost:{args.port}", f"127.0.0.1:{args.port}"}

    class Handler(BaseHTTPRequestHandler):
        server_version = "dashboard-dev-web"

        def route(self):
            path = self.path.split("?", 1)[0]
            hosts = [h.strip().lower() for h in self.headers.get_all("Host", [])]
            if len(hosts) != 1 or hosts[0] not in allowed_hosts:
                self.send_json(
                    HTTPStatus.MISDIRECTED_REQUEST,
                    {"error": "misdirected", "message": "this dev server answers only localhost and 127.0.0.1"},
                )
            elif path.startswith("/api/"):
                self.forward()
            elif self.command != "GET":
                self.send_json(
                    HTTPStatus.METHOD_NOT_ALLOWED,
                    {"error": "method_not_allowed", "message": f"{self.command} {path}: use GET"},
                )
            elif path == "/":
                self.redirect("/dashboard")
            elif path in ("/dashboard", "/dashboard/"):
                self.static("index.html")
            elif path == "/dev/config":
                self.send_json(HTTPStatus.OK, self.dev_config())
            elif path == "/dev/warm-runs":
                self.devtools("warm-runs")
            elif path == "/dev/tenants":
                self.devtools("tenants")
            elif path == "/dev/scopes":
                self.devtools("scopes")
            elif path.startswith("/dashboard/"):
                self.static(path[len("/dashboard/"):])
            else:
                self.send_json(HTTPStatus.NOT_FOUND, {"error": "not_found", "message": f"no route {path}"})

        # Every method reaches route(): /api/* takes them all, the rest answers GET only.
        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = route  # noqa: N815 (stdlib names)

        def forward(self):
            """The request to the API on --api-port, its answer to the browser, both unchanged."""
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            api = http.client.HTTPConnection("127.0.0.1", args.api_port, timeout=API_TIMEOUT_SECONDS)
            try:
                api.request(self.command, self.path, body=body, headers=headers)
                answer = api.getresponse()
                content = answer.read()
            except OSError as e:
                self.send_json(
                    HTTPStatus.BAD_GATEWAY,
                    {"error": "api_unreachable", "message": f"the API on port {args.api_port}: {e}"},
                )
                return
            finally:
                api.close()
            self.send_response(answer.status, answer.reason)
            for name, value in answer.getheaders():
                if name.lower() not in HOP_BY_HOP | OWN_RESPONSE_HEADERS:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(content)

        def dev_config(self):
            tokens = {}
            for role in ("admin", "superadmin", "manager", "employee"):
                token_file = Path(args.state_dir) / f"token-{role}"
                tokens[role] = token_file.read_text().strip() if token_file.exists() else ""
            return {"tokens": tokens}

        def devtools(self, command):
            try:
                done = subprocess.run(
                    [args.devtools, command],
                    capture_output=True,
                    text=True,
                    timeout=DEVTOOLS_TIMEOUT_SECONDS,
                    check=False,
                )
            except (OSError, subprocess.TimeoutExpired) as e:
                self.send_json(HTTPStatus.BAD_GATEWAY, {"error": "devtools_failed", "message": str(e)})
                return
            if done.returncode != 0:
                message = done.stderr.strip().splitlines()[-1:] or [f"exit status {done.returncode}"]
                self.send_json(HTTPStatus.BAD_GATEWAY, {"error": "devtools_failed", "message": message[0]})
                return
            self.send_body(HTTPStatus.OK, "application/json", done.stdout.encode())

        def static(self, name):
            file = (PAGE_DIR / name).resolve()
            if PAGE_DIR not in file.parents or not file.is_file():
                self.send_json(HTTPStatus.NOT_FOUND, {"error": "not_found", "message": f"no file {name}"})
                return
            kind = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
            if kind.startswith("text/") or kind == "application/javascript":
                kind += "; charset=utf-8"
            self.send_body(HTTPStatus.OK, kind, file.read_bytes())

        def redirect(self, location):
            self.send_response(HTTPStatus.FOUND)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def send_json(self, status, value):
            self.send_body(status, "application/json", json.dumps(value).encode())

        def send_body(self, status, content_type, body):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            # The page changes while it is developed, and /dev/* are live reads.
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def log_message(self, format, *log_args):  # noqa: A002 (the stdlib's signature)
            sys.stderr.write("[dev-web] %s\n" % (format % log_args))

    return Handler


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=4000)
    parser.add_argument("--api-port", type=int, default=4001)
    parser.add_argument("--state-dir", default=str(ROOT / ".dev"))
    parser.add_argument("--devtools", required=True, help="path of the built devtools binary")
    args = parser.parse_args()
    mimetypes.add_type("application/javascript", ".js")
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(args))
    print(f"[dev-web] dashboard page on http://localhost:{args.port}/dashboard", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
