"""Pulls through the edge Worker in workerd against `regpress serve` and nginx + auth_request.

Run it with `benches/edge.sh` (installs wrk and nginx, runs npm ci in edge/, builds the release
binary). One site holds the golden fixture as the private `acme/app` and the public
`public/base`. wrk sends GETs of the tag's manifest and of the largest blob (kept alive, 16
connections by default) to: `regpress serve` straight (a bucket's website endpoint, no auth);
nginx with `auth_request` to `regpress auth /check` (examples/nginx.conf) with a registry token;
and the Worker in workerd (`edge/dev.sh`, `acme/**` private), public anonymously and private
with the same token. Rounds interleave the rows so outside load falls on each alike; each row
reports its median round: requests/s, p50 and p99 latency, and the CPU per request of the
processes serving it (workerd and node for the Worker; nginx, the handler and serve for nginx).

Reuses benches/auth_bench.py's issuer, wrk runner and nginx set-up.
"""

import argparse
import base64
import json
import os
import pathlib
import shutil
import subprocess
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import auth_bench  # noqa: E402
from auth_bench import (EXAMPLE_ISSUER, GOLDEN, ROOT, SERVICE, Issuer, WRK_SCRIPT,  # noqa: E402
                        combine, free_port, get, nginx_conf, swap, wait_port, wrk)

WORK = ROOT / "target" / "bench" / "edge"
# The release binary benches/edge.sh builds, or another (REGPRESS_BIN, e.g. a shared target dir).
REGPRESS = pathlib.Path(os.environ.get("REGPRESS_BIN", auth_bench.REGPRESS))


def workerd_pids(dev):
    """The pids of the process group edge/dev.sh leads (bash, node, workerd)."""
    out = subprocess.run(["pgrep", "-g", str(dev.pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


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
    auth_bench.WORK = WORK
    (WORK / "report.lua").write_text(WRK_SCRIPT)
    procs = []

    def start(cmd, log, port, what, **kw):
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(log, "w"), **kw)
        procs.append(proc)
        wait_port(port, proc, what, log)
        return proc

    try:
        site = WORK / "site"
        for repo in ("acme/app", "public/base"):
            subprocess.run([REGPRESS, "publish", GOLDEN, "-q", "--repo", repo, "--tag", "latest",
                            "--to", site], check=True)
        index = json.loads((GOLDEN / "index.json").read_text())
        platform = index["manifests"][0]["digest"]
        manifest = json.loads((GOLDEN / "blobs" / "sha256" / platform[7:]).read_text())
        blob = max(manifest["layers"], key=lambda l: l["size"])

        ports = {k: free_port() for k in ("bucket", "auth", "a", "b", "c", "edge")}
        bucket = f"127.0.0.1:{ports['bucket']}"
        auth = f"127.0.0.1:{ports['auth']}"
        serve = start([REGPRESS, "serve", site, "--listen", bucket], WORK / "serve.log",
                      ports["bucket"], "regpress serve")
        issuer = Issuer()
        key = subprocess.run([REGPRESS, "auth", "keygen"], check=True, capture_output=True).stdout
        (WORK / "auth-key.pem").write_bytes(key)
        # One realm for nginx and the Worker, so one registry token serves both.
        realm = f"http://127.0.0.1:{ports['c']}/token"
        config = swap("auth.toml", (ROOT / "examples" / "auth.toml").read_text(),
                      [(EXAMPLE_ISSUER, issuer.url), ("https://cr.example.com/token", realm)])
        (WORK / "auth.toml").write_text(config)
        handler = start([REGPRESS, "auth", "serve", "--config", WORK / "auth.toml",
                         "--listen", auth], WORK / "auth.log", ports["auth"], "regpress auth serve")
        (WORK / "htpasswd").write_text("unused:x\n")
        conf = nginx_conf(WORK, ports, bucket, auth)
        nginx_bin = shutil.which("nginx") or "/usr/sbin/nginx"
        nginx = start([nginx_bin, "-p", WORK, "-e", WORK / "nginx-error.log", "-c", conf],
                      WORK / "nginx-stderr.log", ports["c"], "nginx")
        dev = subprocess.Popen([ROOT / "edge" / "dev.sh", site, str(ports["edge"]), "--private",
                                "acme/**", "--service", SERVICE, "--realm", realm,
                                "--auth", f"http://{auth}"],
                               stdout=subprocess.PIPE, stderr=open(WORK / "edge.log", "w"),
                               text=True, process_group=0)
        procs.append(dev)
        # One line once every object is loaded.
        banner = dev.stdout.readline()
        if "http://" not in banner:
            sys.exit(f"edge/dev.sh did not start:\n{(WORK / 'edge.log').read_text()}")

        id_token = issuer.id_token("acme/app", lifetime=3600)
        basic_id = "Basic " + base64.b64encode(f"x:{id_token}".encode()).decode()
        status, body = get(f"http://127.0.0.1:{ports['c']}/token?service={SERVICE}"
                           "&scope=repository:acme/app:pull", {"Authorization": basic_id})
        if status != 200:
            sys.exit(f"GET /token: {status} {body!r}")
        bearer = {"Authorization": f"Bearer {json.loads(body)['token']}"}

        base = {"serve": f"http://{bucket}", "nginx": f"http://127.0.0.1:{ports['c']}",
                "edge": f"http://127.0.0.1:{ports['edge']}"}
        watch_sets = {"serve": {"serve": serve.pid},
                      "nginx": {"nginx": nginx.pid, "handler": handler.pid, "serve": serve.pid},
                      "edge": {f"edge:{p}": p for p in workerd_pids(dev)}}
        rows = []
        # Manifests by GET, not HEAD: wrk's parser waits for a HEAD response's body, and ab's
        # HTTP/1.0 keep-alive stalls on workerd, which keeps the connection without saying so.
        for what, path in (("manifest GET", "manifests/latest"), ("blob GET", f"blobs/{blob['digest']}")):
            script = wrk
            rows += [
                (f"{what}, regpress serve (no auth)", "serve", f"/v2/acme/app/{path}", {}, script),
                (f"{what}, nginx + auth_request, private", "nginx", f"/v2/acme/app/{path}", bearer, script),
                (f"{what}, Worker in workerd, public", "edge", f"/v2/public/base/{path}", {}, script),
                (f"{what}, Worker in workerd, private", "edge", f"/v2/acme/app/{path}", bearer, script),
            ]
        for name, target, path, headers, _ in rows:
            status, _ = get(base[target] + path, headers)
            if status != 200:
                sys.exit(f"{name}: {status}\n{(WORK / 'edge.log').read_text()}")
            if headers and get(base[target] + path)[0] != 401:
                sys.exit(f"{name}: an anonymous request was not refused")

        def run(row, duration):
            name, target, path, headers, tool = row
            return tool(base[target] + path, args, headers, duration, watch_sets[target])

        for row in rows:
            if args.warmup:
                run(row, args.warmup)
        rounds = {row[0]: [] for row in rows}
        per_round = max(1, round(args.duration / args.rounds))
        for i in range(args.rounds):
            for row in rows:
                rounds[row[0]].append(run(row, per_round))
            print(f"  round {i + 1}/{args.rounds} done", file=sys.stderr)
        results = {name: combine(rs) for name, rs in rounds.items()}
    finally:
        for proc in reversed(procs):
            if proc.args[0] == ROOT / "edge" / "dev.sh":
                subprocess.run(["kill", "-TERM", "--", f"-{proc.pid}"])
            else:
                proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()

    print(f"\nwrk -t{args.threads} -c{args.connections}, {args.rounds} interleaved rounds of "
          f"{per_round}s, median round; blob: {blob['size']} bytes\n")
    print("| scenario | req/s | p50 ms | p99 ms | server CPU µs/req |")
    print("| --- | --- | --- | --- | --- |")
    for name, r in results.items():
        cpu = sum(r["cpu_us"].values())
        print(f"| {name} | {r['rps']:.0f} | {r['p50_us'] / 1000:.2f} | {r['p99_us'] / 1000:.2f} "
              f"| {cpu:.0f} |")


if __name__ == "__main__":
    main()
