#!/usr/bin/env python3
"""regpress benchmark harness: the same synthetic catalog, published side by side with the tools
users would otherwise run, each against a fresh bucket of the same local Garage.

Run it with `benches/run.sh` (installs the tools, builds release binaries). Prints a table of
wall time, CPU time, peak RSS, bytes and requests, with ratios against the baselines.
"""

import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
TARGET = pathlib.Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target")
BENCH = TARGET / "bench"
REGPRESS = TARGET / "release" / "regpress"
SYNTH = TARGET / "release" / "examples" / "synth_catalog"
GARAGE = ROOT / "tests" / "garage.sh"
PORTS = {"GARAGE_S3_PORT": "39100", "GARAGE_RPC_PORT": "39101", "GARAGE_WEB_PORT": "39102"}
REGISTRY_ADDR = "127.0.0.1:39110"


def sh(cmd, env=None, cwd=None, check=True):
    """Run a command, return stdout; fail loudly."""
    out = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    if check and out.returncode != 0:
        sys.exit(f"failed: {' '.join(map(str, cmd))}\n{out.stdout}\n{out.stderr}")
    return out.stdout


def measure(cmd, env=None, cwd=None, stats=None):
    """Wall time, CPU time (user+sys) and peak RSS of a command, via GNU time (its figures go
    to `stats`, a file of the caller's; default one under BENCH)."""
    stats = stats or BENCH / "time.txt"
    start = time.monotonic()
    sh(["/usr/bin/time", "-f", "%U %S %M", "-o", str(stats), *map(str, cmd)], env=env, cwd=cwd)
    wall = time.monotonic() - start
    user, system, rss_kb = stats.read_text().split()[-3:]
    return {"wall": wall, "cpu": float(user) + float(system), "rss_mb": int(rss_kb) / 1024}


def total(results):
    return {
        "wall": sum(r["wall"] for r in results),
        "cpu": sum(r["cpu"] for r in results),
        "rss_mb": max(r["rss_mb"] for r in results),
    }


class Garage:
    def __init__(self, directory=None, ports=None):
        self.env = dict(os.environ, GARAGE_DIR=str(directory or BENCH / "garage"), **(ports or PORTS))
        sh([GARAGE, "stop"], env=self.env)
        for line in sh([GARAGE, "start"], env=self.env).splitlines():
            key, _, value = line.removeprefix("export ").partition("=")
            self.env[key] = value
        self.endpoint = self.env["REGPRESS_TEST_S3_ENDPOINT"]
        self.web = self.env["REGPRESS_TEST_WEB"]

    def bucket(self, name):
        sh([GARAGE, "bucket", name], env=self.env)
        return name

    def expose(self, name):
        sh([GARAGE, "expose", name], env=self.env)

    def stop(self):
        sh([GARAGE, "stop"], env=self.env, check=False)


def key_tree_files(tree):
    """(key, path, content type) for every object of a directory site."""
    out = []
    for path in sorted(tree.rglob("*")):
        rel = path.relative_to(tree)
        if not path.is_file() or rel.parts[0] == ".regpress" or path.name == ".slash":
            continue
        meta = json.loads((tree / ".regpress" / "meta" / f"{rel}.json").read_text())
        out.append((str(rel), path, meta["content_type"]))
    return out


def regpress_publish(garage, catalog, bucket, report):
    cmd = [REGPRESS, "publish", "--config", catalog / "regpress.toml", "--to", f"s3://{bucket}",
           "--endpoint", garage.endpoint, "--region", "garage", "--report", report, "-q"]
    result = measure(cmd, env=garage.env)
    r = json.loads(report.read_text())
    result.update(bytes=r["bytes_written"], requests=r["requests"], writes=r["objects_written"])
    return result


def s5cmd(garage, tree, bucket):
    lines = [f'cp --content-type "{ct}" "{path}" "s3://{bucket}/{key}"' for key, path, ct in key_tree_files(tree)]
    commands = BENCH / "s5cmd.txt"
    commands.write_text("\n".join(lines) + "\n")
    env = dict(garage.env, AWS_REGION="garage")
    cold = measure(["s5cmd", "--endpoint-url", garage.endpoint, "run", commands], env=env)
    cold.update(bytes=sum(p.stat().st_size for _, p, _ in key_tree_files(tree)), writes=len(lines))
    noop = measure(["s5cmd", "--endpoint-url", garage.endpoint, "sync", f"{tree}/v2/", f"s3://{bucket}/v2/"], env=env)
    return cold, noop


def unique_blobs(catalog):
    """One path per distinct blob of the catalog's layouts (the name is the digest)."""
    seen = {}
    for path in sorted((catalog / "layouts").rglob("blobs/sha256/*")):
        seen.setdefault(path.name, path)
    return list(seen.values())


def floor(garage, catalog, bucket, jobs=16):
    """What the store can ingest: s5cmd uploading exactly the unique blobs, one key each, with
    as many in flight as regpress's default `--jobs`. No manifests, tags or lists: the least a
    cold publish must send."""
    blobs = unique_blobs(catalog)
    commands = BENCH / "s5cmd-floor.txt"
    commands.write_text("".join(f'cp "{p}" "s3://{bucket}/blobs/{p.name}"\n' for p in blobs))
    env = dict(garage.env, AWS_REGION="garage")
    row = measure(["s5cmd", "--numworkers", str(jobs), "--endpoint-url", garage.endpoint, "run", commands], env=env)
    row.update(bytes=sum(p.stat().st_size for p in blobs), writes=len(blobs))
    return row


def rclone_env(garage):
    """rclone configured for the Garage node (remote `g:`)."""
    env = dict(garage.env, RCLONE_CONFIG_G_TYPE="s3", RCLONE_CONFIG_G_PROVIDER="Other",
               RCLONE_CONFIG_G_ENDPOINT=garage.endpoint, RCLONE_CONFIG_G_REGION="garage",
               RCLONE_CONFIG_G_ACCESS_KEY_ID=garage.env["AWS_ACCESS_KEY_ID"],
               RCLONE_CONFIG_G_SECRET_ACCESS_KEY=garage.env["AWS_SECRET_ACCESS_KEY"])
    env.pop("AWS_CA_BUNDLE", None)  # rclone 1.60 fails to start with it set
    return env


def rclone(garage, tree, bucket):
    env = rclone_env(garage)
    groups = {}
    for key, _, ct in key_tree_files(tree):
        groups.setdefault(ct, []).append(key)
    runs = []
    for i, (ct, keys) in enumerate(sorted(groups.items())):
        listing = BENCH / f"rclone-{i}.txt"
        listing.write_text("\n".join(keys) + "\n")
        runs.append(measure(["rclone", "copy", tree, f"g:{bucket}", "--files-from", listing,
                             "--header-upload", f"Content-Type: {ct}", "--transfers", "16",
                             "--s3-upload-cutoff", "64M", "--s3-chunk-size", "16M"], env=env))
    return total(runs)


def distribution(garage, catalog, names, bucket):
    config = BENCH / "registry.yml"
    config.write_text(f"""version: 0.1
storage:
  s3:
    accesskey: {garage.env['AWS_ACCESS_KEY_ID']}
    secretkey: {garage.env['AWS_SECRET_ACCESS_KEY']}
    region: garage
    regionendpoint: {garage.endpoint}
    bucket: {bucket}
    secure: false
    v4auth: true
    rootdirectory: /registry
  redirect:
    disable: true
http:
  addr: {REGISTRY_ADDR}
""")
    env = dict(garage.env)
    env.pop("AWS_CA_BUNDLE", None)
    log = open(BENCH / "registry.log", "w")
    registry = subprocess.Popen(["docker-registry", "serve", str(config)], env=env, stdout=log, stderr=log)
    for _ in range(100):
        if subprocess.run(["curl", "-sf", f"http://{REGISTRY_ADDR}/v2/"], capture_output=True).returncode == 0:
            break
        if registry.poll() is not None:
            sys.exit(f"docker-registry exited, see {BENCH / 'registry.log'}")
        time.sleep(0.1)
    try:
        pushes = [measure(["skopeo", "copy", "--all", "-q", "--dest-tls-verify=false",
                           f"oci:{catalog / 'tagged' / n}:latest", f"docker://{REGISTRY_ADDR}/hardened/{n}:latest"])
                  for n in names]
        pulls = pull_all(f"{REGISTRY_ADDR}", names, "from-distribution")
    finally:
        registry.terminate()
        registry.wait()
    return total(pushes), pulls


def pull_all(host, names, label):
    runs = []
    for n in names:
        dest = BENCH / "pulls" / label / n
        shutil.rmtree(dest, ignore_errors=True)
        dest.parent.mkdir(parents=True, exist_ok=True)
        runs.append(measure(["skopeo", "copy", "--all", "-q", "--src-tls-verify=false",
                             f"docker://{host}/hardened/{n}:latest", f"oci:{dest}:latest"]))
    shutil.rmtree(BENCH / "pulls" / label, ignore_errors=True)
    return total(runs)


def big_layout(gib):
    """A one-image layout whose single layer is `gib` GiB of random bytes, written in chunks."""
    import hashlib
    layout = BENCH / f"big-{gib}"
    if (layout / "index.json").exists():
        return layout
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    digest, size, tmp = hashlib.sha256(), 0, blobs / "tmp"
    with open(tmp, "wb") as f:
        for _ in range(gib * 1024):
            chunk = os.urandom(1 << 20)
            digest.update(chunk)
            f.write(chunk)
            size += len(chunk)
    layer = {"mediaType": "application/vnd.oci.image.layer.v1.tar", "size": size, "digest": f"sha256:{digest.hexdigest()}"}
    tmp.rename(blobs / digest.hexdigest())

    def blob(doc):
        data = json.dumps(doc).encode()
        h = hashlib.sha256(data).hexdigest()
        (blobs / h).write_bytes(data)
        return {"size": len(data), "digest": f"sha256:{h}"}

    config = blob({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}})
    manifest = blob({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                     "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
                     "layers": [layer]})
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", **manifest}]}))
    return layout


def big_layer_rows(garage, gib, runs=2):
    """One large layer: regpress publish vs s5cmd cp vs rclone copyto, alternating, each into a
    fresh bucket; the best of `runs` each (wall time, with that run's RSS)."""
    layout = big_layout(gib)
    layer = max((layout / "blobs" / "sha256").iterdir(), key=lambda p: p.stat().st_size)
    ours, s5, rc = [], [], []
    env = rclone_env(garage)
    for i in range(runs):
        ours.append(measure(
            [REGPRESS, "publish", layout, "--repo", "big", "--tag", "latest", "--to",
             f"s3://{garage.bucket(f'big-{gib}-{i}')}", "--endpoint", garage.endpoint, "--region", "garage", "-q"],
            env=garage.env))
        s5.append(measure(
            ["s5cmd", "--endpoint-url", garage.endpoint, "cp", layer, f"s3://{garage.bucket(f'big-s5-{gib}-{i}')}/layer"],
            env=dict(garage.env, AWS_REGION="garage")))
        rc.append(measure(
            ["rclone", "copyto", layer, f"g:{garage.bucket(f'big-rc-{gib}-{i}')}/layer", "--s3-upload-cutoff", "64M",
             "--s3-chunk-size", "16M"], env=env))
    best = lambda runs: min(runs, key=lambda r: r["wall"])
    return {f"regpress publish, {gib} GiB layer": best(ours), f"s5cmd cp, {gib} GiB layer": best(s5),
            f"rclone copyto, {gib} GiB layer": best(rc)}


def verify_rate(catalog):
    """Single-core hashing: regpress verify vs openssl dgst -sha256 over the same blobs."""
    blobs = sorted({p for p in (catalog / "layouts").rglob("blobs/sha256/*")})
    size = sum(p.stat().st_size for p in blobs)
    one_core = dict(os.environ, RAYON_NUM_THREADS="1")
    # Best of three each, alternating, so both read from a warm page cache.
    ours, openssl = [], []
    for _ in range(3):
        ours.append(measure(["taskset", "-c", "0", REGPRESS, "verify", "--config", catalog / "regpress.toml", "-q"],
                            env=one_core)["wall"])
        openssl.append(measure(["taskset", "-c", "0", "openssl", "dgst", "-sha256", *blobs])["wall"])
    return size / min(ours) / 1e9, size / min(openssl) / 1e9


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repos", type=int, default=40)
    ap.add_argument("--scale", type=float, default=1.0, help="layer size factor (1.0: ~1.3 GB unique)")
    ap.add_argument("--big-layer-gib", type=int, default=2, help="size of the large-layer RSS scenario (0: skip)")
    ap.add_argument("--only", choices=["all", "cold", "big"], default="all",
                    help="cold: the cold publish and its floor; big: the large layer; all: everything")
    args = ap.parse_args()
    BENCH.mkdir(parents=True, exist_ok=True)
    catalog = BENCH / f"catalog-{args.repos}-{args.scale}"
    if not (catalog / "regpress.toml").exists():
        print(sh([SYNTH, catalog, "--repos", str(args.repos), "--scale", str(args.scale)]).strip())
    names = [f"image-{i:03d}" for i in range(args.repos)]
    rows = {}
    garage = Garage()
    try:
        if args.only == "big":
            rows.update(big_layer_rows(garage, args.big_layer_gib))
            return print_rows(rows, args)
        # The floor first and the publish second, alternating twice: each pair sees the same
        # store, and the best of two evens out a cold page cache.
        cold, floors = [], []
        for i in range(2):
            floors.append(floor(garage, catalog, garage.bucket(f"floor-{i}")))
            cold.append(regpress_publish(garage, catalog, garage.bucket(f"regpress-{i}" if i else "regpress"),
                                         BENCH / "r1.json"))
        rows["s5cmd unique blobs (floor)"] = min(floors, key=lambda r: r["wall"])
        rows["regpress cold publish"] = min(cold, key=lambda r: r["wall"])
        if args.only == "cold":
            return print_rows(rows, args)
        rows["regpress no-op re-publish"] = regpress_publish(garage, catalog, "regpress", BENCH / "r2.json")
        for p in (catalog / "layouts").rglob("*"):
            p.touch()
        rows["regpress no-op after touch"] = regpress_publish(garage, catalog, "regpress", BENCH / "r3.json")
        rebuilt = BENCH / "catalog-rebuilt"
        shutil.rmtree(rebuilt, ignore_errors=True)
        sh(["cp", "-al", catalog, rebuilt])
        sh([SYNTH, rebuilt, "--repos", str(args.repos), "--scale", str(args.scale), "--rebuild", names[min(3, len(names) - 1)]])
        rows["regpress one image rebuilt"] = regpress_publish(garage, rebuilt, "regpress", BENCH / "r4.json")
        shutil.rmtree(rebuilt, ignore_errors=True)

        tree = BENCH / "keytree"
        shutil.rmtree(tree, ignore_errors=True)
        sh([REGPRESS, "publish", "--config", catalog / "regpress.toml", "--to", tree, "-q"])
        rows["s5cmd cold copy (key tree)"], rows["s5cmd no-op sync"] = s5cmd(garage, tree, garage.bucket("s5cmd"))
        rows["rclone cold copy (key tree)"] = rclone(garage, tree, garage.bucket("rclone"))
        rows["skopeo -> distribution push"], rows["skopeo pull from distribution"] = distribution(
            garage, catalog, names, garage.bucket("distribution"))
        garage.expose("regpress")
        rows["skopeo pull from regpress bucket"] = pull_all(garage.web, names, "from-bucket")
        if args.big_layer_gib:
            rows.update(big_layer_rows(garage, args.big_layer_gib))
    finally:
        garage.stop()
    rows["verify"] = verify_rate(catalog)
    print_rows(rows, args)


def print_rows(rows, args):
    """The table, then the ratios of the rows that ran."""
    verify = rows.pop("verify", None)
    print(f"\n{args.repos} repositories, scale {args.scale}; one run on this machine, {time.strftime('%Y-%m-%d')}\n")
    print(f"{'scenario':34} {'wall s':>8} {'cpu s':>8} {'RSS MB':>8} {'MB sent':>9} {'requests':>9} {'writes':>7}")
    for name, r in rows.items():
        mb = f"{r['bytes'] / 1e6:.0f}" if "bytes" in r else "-"
        print(f"{name:34} {r['wall']:8.2f} {r['cpu']:8.2f} {r['rss_mb']:8.0f} {mb:>9} "
              f"{r.get('requests', '-'):>9} {r.get('writes', '-'):>7}")
    def ratio(label, a, b, target=""):
        if a in rows and b in rows:
            print(f"  {label:40} {rows[a]['wall'] / rows[b]['wall']:6.2f}  {target}")

    print("\nratios (wall time, lower is better for regpress)")
    ratio("cold publish / s5cmd unique blobs", "regpress cold publish", "s5cmd unique blobs (floor)", "(target <= 1.05)")
    ratio("cold publish / s5cmd cold copy", "regpress cold publish", "s5cmd cold copy (key tree)", "(target <= 0.70)")
    ratio("cold publish / rclone cold copy", "regpress cold publish", "rclone cold copy (key tree)")
    ratio("cold publish / skopeo -> distribution", "regpress cold publish", "skopeo -> distribution push", "(target <= 0.20)")
    ratio("no-op re-publish / s5cmd no-op sync", "regpress no-op re-publish", "s5cmd no-op sync", "(target <= 1.00)")
    ratio("pull from bucket / pull from registry", "skopeo pull from regpress bucket", "skopeo pull from distribution", "(target <= 1.00)")
    for k in [k for k in rows if k.startswith("regpress publish, ")]:
        layer = k.removeprefix("regpress publish, ")
        ratio(layer + " / s5cmd cp", k, f"s5cmd cp, {layer}", "(target <= 0.95)")
    if verify:
        ours_gbs, openssl_gbs = verify
        print(f"  verify, one core: {ours_gbs:.2f} GB/s vs openssl {openssl_gbs:.2f} GB/s = {ours_gbs / openssl_gbs:.2f}  (target >= 0.90)")


if __name__ == "__main__":
    main()
