#!/usr/bin/env python3
"""Private-repository benchmark: what `regpress auth serve` costs on the pull path and at /token.

Run it with `benches/auth.sh` (installs wrk and nginx, builds the release binary). One nginx
(one worker, access log off) proxies to one `regpress serve` of the apko golden layout, three
ways on three ports: (a) no auth, (b) nginx's own `auth_basic` (an htpasswd file, apr1 as
`htpasswd` writes by default), (c) `examples/nginx.conf`: `auth_request` to `regpress auth serve
/check` (from `examples/auth.toml`) with a valid registry token. wrk GETs the manifest through
each; then wrk GETs the handler's `/token` with Basic credentials carrying an RS256 ID token from
a test issuer served here (discovery + JWKS; the handler caches the JWKS after the first
request). (d) wrk GETs the handler's /check directly, kept alive, with the headers nginx sends:
the handler alone. Rows run in interleaved rounds (so load from other processes falls on all
of them alike) and report their median round. Prints requests/s, p50/p99 latency, CPU per
request of nginx and of the handler, the handler's peak RSS, and the ratios.
"""

import argparse
import base64
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

ROOT = pathlib.Path(__file__).resolve().parent.parent
WORK = ROOT / "target" / "bench" / "auth"
REGPRESS = ROOT / "target" / "release" / "regpress"
GOLDEN = ROOT / "fixtures" / "apko" / "golden"
SERVICE = "cr.example.com"
REPO = "acme/app"
MANIFEST = f"/v2/{REPO}/manifests/latest"
EXAMPLE_ISSUER = "https://token.actions.githubusercontent.com"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

WRK_SCRIPT = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout))
end
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, what, log=None):
    deadline = time.monotonic() + 15
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                detail = log.read_text() if log and log.exists() else ""
                sys.exit(f"{what} is not listening on {port}\n{detail}")
            time.sleep(0.05)


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def uint(n):
    return n.to_bytes((n.bit_length() + 7) // 8, "big")


class Issuer:
    """A test OIDC issuer on loopback: discovery and a JWKS (RSA 2048, kid key-1), counting
    requests, and ID tokens shaped like a GitHub Actions job's, signed RS256."""

    def __init__(self):
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        numbers = self.key.public_key().public_numbers()
        self.jwk = {"kty": "RSA", "use": "sig", "alg": "RS256", "kid": "key-1",
                    "n": b64url(uint(numbers.n)), "e": b64url(uint(numbers.e))}
        self.hits = {"discovery": 0, "jwks": 0, "other": 0}
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path == "/.well-known/openid-configuration":
                    issuer.hits["discovery"] += 1
                    body = {"issuer": issuer.url, "jwks_uri": f"{issuer.url}/jwks",
                            "response_types_supported": ["id_token"],
                            "subject_types_supported": ["public"],
                            "id_token_signing_alg_values_supported": ["RS256"]}
                elif self.path == "/jwks":
                    issuer.hits["jwks"] += 1
                    body = {"keys": [issuer.jwk]}
                else:
                    issuer.hits["other"] += 1
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def id_token(self, repository, lifetime):
        now = int(time.time())
        owner = repository.split("/")[0]
        workflow = f"{repository}/.github/workflows/release.yml@refs/heads/main"
        claims = {
            "jti": f"jti-{now}", "sub": f"repo:{repository}:ref:refs/heads/main", "aud": SERVICE,
            "ref": "refs/heads/main", "repository": repository, "repository_owner": owner,
            "repository_visibility": "private", "workflow_ref": workflow,
            "job_workflow_ref": workflow, "event_name": "push", "ref_type": "branch",
            "runner_environment": "github-hosted", "iss": self.url,
            "nbf": now - 5, "iat": now - 5, "exp": now + lifetime,
        }
        header = {"alg": "RS256", "typ": "JWT", "kid": "key-1"}
        signing_input = (b64url(json.dumps(header).encode()) + "."
                         + b64url(json.dumps(claims).encode())).encode()
        signature = self.key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        return signing_input.decode() + "." + b64url(signature)


def swap(name, text, swaps):
    """`text` with each (from, to) replaced, insisting that `from` occurs (as the tests do)."""
    for old, new in swaps:
        if old not in text:
            sys.exit(f"examples/{name} no longer contains {old!r}: update benches/auth_bench.py")
        text = text.replace(old, new)
    return text


def get(url, headers=None):
    """(status, body) of a GET."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def cpu_seconds(pid):
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def status_kb(pid, field):
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def wrk(url, args, headers, duration, watch):
    """Run wrk; return its summary plus CPU seconds per request of each watched pid."""
    cmd = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{duration}s",
           "-s", str(WORK / "report.lua")]
    for name, value in headers.items():
        cmd += ["-H", f"{name}: {value}"]
    before = {name: cpu_seconds(pid) for name, pid in watch.items()}
    out = subprocess.run(cmd + [url], capture_output=True, text=True)
    after = {name: cpu_seconds(pid) for name, pid in watch.items()}
    line = next((l for l in out.stdout.splitlines() if l.startswith("WRKJSON ")), None)
    if out.returncode != 0 or line is None:
        sys.exit(f"wrk failed: {' '.join(cmd)}\n{out.stdout}\n{out.stderr}")
    r = json.loads(line.removeprefix("WRKJSON "))
    errors = sum(r[k] for k in ("connect", "read", "write", "status", "timeout"))
    if errors:
        sys.exit(f"wrk {url}: {errors} errors (non-2xx or socket) of {r['requests']}:\n{out.stdout}")
    r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
    r["cpu_us"] = {name: (after[name] - before[name]) / r["requests"] * 1e6 for name in watch}
    return r


def combine(rounds):
    """Median req/s, p50 and p99 of the rounds; CPU per request over all of them."""
    def median(key):
        values = sorted(r[key] for r in rounds)
        return values[len(values) // 2]
    requests = sum(r["requests"] for r in rounds)
    return {"rps": median("rps"), "p50_us": median("p50_us"), "p99_us": median("p99_us"),
            "rps_range": (min(r["rps"] for r in rounds), max(r["rps"] for r in rounds)),
            "requests": requests,
            "cpu_us": {name: sum(r["cpu_us"][name] * r["requests"] for r in rounds) / requests
                       for name in rounds[0]["cpu_us"]}}


def nginx_conf(work, ports, bucket, auth):
    """One nginx, three servers: (a) no auth, (b) auth_basic, (c) examples/nginx.conf."""
    example = (ROOT / "examples" / "nginx.conf").read_text()
    site = swap("nginx.conf", example, [
        ("server 127.0.0.1:5000;", f"server {bucket};"),
        ("server 127.0.0.1:5001;", f"server {auth};"),
        ("listen 80;", f"listen 127.0.0.1:{ports['c']};"),
    ])
    (work / "regpress.conf").write_text(site)
    plain = f"""
server {{
    listen 127.0.0.1:{ports['a']};
    location /v2/ {{
        proxy_pass http://regpress_bucket;
        proxy_set_header Host $host;
        proxy_set_header Authorization "";
    }}
}}
server {{
    listen 127.0.0.1:{ports['b']};
    location /v2/ {{
        auth_basic "registry";
        auth_basic_user_file {work}/htpasswd;
        proxy_pass http://regpress_bucket;
        proxy_set_header Host $host;
        proxy_set_header Authorization "";
    }}
}}
"""
    (work / "plain.conf").write_text(plain)
    main = f"""daemon off;
master_process off;
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {work}/body;
  proxy_temp_path {work}/proxy;
  fastcgi_temp_path {work}/fastcgi;
  uwsgi_temp_path {work}/uwsgi;
  scgi_temp_path {work}/scgi;
  include {work}/plain.conf;
  include {work}/regpress.conf;
}}
"""
    conf = work / "nginx.conf"
    conf.write_text(main)
    return conf


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per row (10)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per row (5)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (16)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (1)")
    parser.add_argument("--warmup", type=int, default=1, help="seconds of warm-up per run (1)")
    args = parser.parse_args()

    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    (WORK / "report.lua").write_text(WRK_SCRIPT)
    procs = []

    def start(cmd, log, port, what):
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(log, "w"))
        procs.append(proc)
        wait_port(port, proc, what, log)
        return proc

    try:
        site = WORK / "site"
        subprocess.run([REGPRESS, "publish", GOLDEN, "-q", "--repo", REPO, "--tag", "latest",
                        "--to", site], check=True)
        golden_index = (GOLDEN / "index.json").read_bytes()

        ports = {k: free_port() for k in ("bucket", "auth", "a", "b", "c")}
        bucket = f"127.0.0.1:{ports['bucket']}"
        auth = f"127.0.0.1:{ports['auth']}"
        serve = start([REGPRESS, "serve", site, "--listen", bucket], WORK / "serve.log",
                      ports["bucket"], "regpress serve")

        issuer = Issuer()
        key = subprocess.run([REGPRESS, "auth", "keygen"], check=True, capture_output=True).stdout
        (WORK / "auth-key.pem").write_bytes(key)
        realm = f"http://127.0.0.1:{ports['c']}/token"
        config = swap("auth.toml", (ROOT / "examples" / "auth.toml").read_text(),
                      [(EXAMPLE_ISSUER, issuer.url), ("https://cr.example.com/token", realm)])
        (WORK / "auth.toml").write_text(config)
        handler = start([REGPRESS, "auth", "serve", "--config", WORK / "auth.toml",
                         "--listen", auth], WORK / "auth.log", ports["auth"], "regpress auth serve")
        idle_rss = status_kb(handler.pid, "VmRSS")

        password = "correct horse battery staple"
        hashed = subprocess.run(["openssl", "passwd", "-apr1", password], check=True,
                                capture_output=True, text=True).stdout.strip()
        (WORK / "htpasswd").write_text(f"bench:{hashed}\n")
        conf = nginx_conf(WORK, ports, bucket, auth)
        nginx_bin = shutil.which("nginx") or "/usr/sbin/nginx"
        nginx = start([nginx_bin, "-p", WORK, "-e", WORK / "nginx-error.log", "-c", conf],
                      WORK / "nginx-stderr.log", ports["c"], "nginx")
        watch = {"nginx": nginx.pid, "handler": handler.pid, "bucket": serve.pid}

        # A registry token, the way a client gets one: through nginx, from the ID token.
        id_token = issuer.id_token(REPO, lifetime=3600)
        basic_id = "Basic " + base64.b64encode(f"x:{id_token}".encode()).decode()
        token_path = f"/token?service={SERVICE}&scope=repository:{REPO}:pull"
        status, body = get(f"http://127.0.0.1:{ports['c']}{token_path}", {"Authorization": basic_id})
        if status != 200:
            sys.exit(f"GET /token: {status} {body!r}\n{(WORK / 'auth.log').read_text()}")
        registry_token = json.loads(body)["token"]

        basic = "Basic " + base64.b64encode(f"bench:{password}".encode()).decode()
        scenarios = [
            ("a", "(a) nginx, no auth", {}),
            ("b", "(b) nginx auth_basic (htpasswd, apr1)", {"Authorization": basic}),
            ("c", "(c) nginx auth_request → regpress auth /check", {"Authorization": f"Bearer {registry_token}"}),
        ]
        # Every way in serves the manifest byte for byte, and refuses without credentials.
        for port, what, headers in scenarios:
            url = f"http://127.0.0.1:{ports[port]}{MANIFEST}"
            status, body = get(url, headers)
            if status != 200 or body != golden_index:
                sys.exit(f"{what}: GET {MANIFEST}: {status} {body[:200]!r}")
            if headers and get(url)[0] != 401:
                sys.exit(f"{what}: an anonymous GET was not refused")

        # The handler alone: /check straight from wrk on kept-alive connections, with the
        # headers nginx sends (nginx opens a new connection to it for every subrequest).
        check_url = f"http://{auth}/check"
        check_headers = {"Authorization": f"Bearer {registry_token}", "X-Original-URI": MANIFEST,
                         "X-Forwarded-Method": "GET"}
        if (get(check_url, check_headers)[0] != 200
                or get(check_url, {**check_headers, "Authorization": ""})[0] != 401):
            sys.exit("GET /check direct: a valid token is not 200 or no token is not 401")
        token_url = f"http://{auth}{token_path}"
        runs = [(port, f"http://127.0.0.1:{ports[port]}{MANIFEST}", headers)
                for port, _, headers in scenarios]
        runs += [("check", check_url, check_headers), ("token", token_url, {"Authorization": basic_id})]

        # Rounds interleave the runs, so load from other processes that comes and goes falls on
        # every row alike; each row reports its median round.
        for _, url, headers in runs:
            if args.warmup:
                wrk(url, args, headers, args.warmup, watch)
        issuer_before = sum(issuer.hits.values())
        rounds = {key: [] for key, _, _ in runs}
        per_round = max(1, round(args.duration / args.rounds))
        for i in range(args.rounds):
            for key, url, headers in runs:
                rounds[key].append(wrk(url, args, headers, per_round, watch))
            print(f"  round {i + 1}/{args.rounds}: " + ", ".join(
                f"{key} {rounds[key][-1]['rps']:.0f}" for key, _, _ in runs) + " req/s",
                file=sys.stderr)
        results = {key: combine(rs) for key, rs in rounds.items()}
        issuer_requests = sum(issuer.hits.values()) - issuer_before
        peak_rss = status_kb(handler.pid, "VmHWM")
        status, body = get(token_url, {"Authorization": basic_id})
        if status != 200 or "token" not in json.loads(body):
            sys.exit(f"GET /token after the run: {status} {body!r}")
    finally:
        for proc in reversed(procs):
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()

    t = results["token"]
    print(f"\nwrk -t{args.threads} -c{args.connections}, {args.rounds} interleaved rounds of "
          f"{per_round} s per row (median round; req/s range min–max); GET {MANIFEST} "
          f"({len(golden_index)} bytes) through one nginx worker to `regpress serve`; "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}\n")
    print("| scenario | req/s | req/s range | p50 ms | p99 ms | nginx CPU µs/req "
          "| handler CPU µs/req |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    rows = [(what, results[port]) for port, what, _ in scenarios]
    rows.append(("(d) GET /check direct to the handler, kept-alive (no nginx)", results["check"]))
    rows.append(("GET /token (Basic, RS256 ID token → ES256 registry token), direct to the handler", t))
    for what, r in rows:
        handler_cpu = f"{r['cpu_us']['handler']:.0f}" if r['cpu_us']['handler'] >= 0.5 else ""
        nginx_cpu = f"{r['cpu_us']['nginx']:.0f}" if r['cpu_us']['nginx'] >= 0.5 else ""
        low, high = r["rps_range"]
        print(f"| {what} | {r['rps']:.0f} | {low:.0f}–{high:.0f} | {r['p50_us'] / 1000:.2f} "
              f"| {r['p99_us'] / 1000:.2f} "
              f"| {nginx_cpu} | {handler_cpu} |")
    def ratio(top, bottom, metric):
        """Median over rounds of the paired ratio (round i of one row against round i of another)."""
        values = sorted(x[metric] / y[metric] for x, y in zip(rounds[top], rounds[bottom]))
        return values[len(values) // 2]
    print("\nRatios (median of per-round ratios): " + "; ".join(
        f"{label} (c)/(a) {ratio('c', 'a', metric):.2f}×, (c)/(b) {ratio('c', 'b', metric):.2f}×"
        for label, metric in (("req/s", "rps"), ("p50", "p50_us"), ("p99", "p99_us"))) + ".")
    print(f"Handler RSS: {idle_rss / 1024:.1f} MB idle, {peak_rss / 1024:.1f} MB peak (VmHWM) after "
          f"the load. Issuer requests during the measured rounds: {issuer_requests} "
          f"(the JWKS is cached after the first /token).")


if __name__ == "__main__":
    main()
