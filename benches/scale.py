#!/usr/bin/env python3
"""regpress at catalog scale: how the cost of everyday operations grows with the catalog.

Run it with `benches/scale.sh` (installs what it needs, builds the release binary). One bucket of
a local Garage is grown through the sizes (default 10, 100, 1,000 and 2,000 repositories of 50
tags each, every tag its own small image); at each size it measures, with the requests the
target counted, wall time and peak RSS:

- publishing one new image into one repository, and the same publish again (a no-op);
- moving one tag to another image of the repository;
- publishing one image into a new repository (the catalog changes);
- re-publishing the whole catalog (a no-op: every object is in place);
- `regpress gc` with nothing to delete (default grace);
- `regpress check` of one repository, through the bucket's website endpoint.

`--shards 1,2,4,8` adds the sharded mode: for each N, N publishers (`publish --shard K/N`) run
at once into one fresh bucket, each with its shard of a catalog of `--shard-repos` repositories;
then the N again (they must write nothing), then the whole catalog as a dry run (nothing left to
write: every tag list and the catalog hold every shard's tags).

Prints markdown tables, writes them to BENCH/scale.md and the growth as a log-log plot to
`--plot` (default docs/scale.png).
"""

import argparse
import hashlib
import io
import json
import os
import pathlib
import subprocess
import sys
import tarfile
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import harness  # noqa: E402  (sh, measure, Garage)

BENCH = harness.TARGET / "bench" / "scale"
REGPRESS = pathlib.Path(os.environ.get("REGPRESS_BIN") or harness.REGPRESS)
PORTS = {name: os.environ.get(name, default) for name, default in
         (("GARAGE_S3_PORT", "39200"), ("GARAGE_RPC_PORT", "39201"), ("GARAGE_WEB_PORT", "39202"))}
TAGS = 50
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"


def repo_name(i):
    return f"scale/r{i:04d}"


class Layout:
    """An OCI layout being written: content-addressed blobs, then index.json."""

    def __init__(self, path):
        self.path = path
        self.blobs = path / "blobs" / "sha256"
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.entries = []

    def blob(self, data, media_type):
        digest = hashlib.sha256(data).hexdigest()
        (self.blobs / digest).write_bytes(data)
        return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}

    def image(self, layer, labels, ref=None):
        """A one-layer linux/amd64 image whose config carries `labels` (so every image differs)."""
        config = self.blob(json.dumps({
            "architecture": "amd64", "os": "linux", "config": {"Labels": labels},
            "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]}}).encode(),
            "application/vnd.oci.image.config.v1+json")
        manifest = self.blob(json.dumps({
            "schemaVersion": 2, "mediaType": MANIFEST, "config": config, "layers": [layer]}).encode(), MANIFEST)
        if ref:
            manifest["annotations"] = {"org.opencontainers.image.ref.name": ref}
        self.entries.append(manifest)

    def close(self):
        (self.path / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
        (self.path / "index.json").write_text(json.dumps(
            {"schemaVersion": 2, "mediaType": INDEX, "manifests": self.entries}))


def tar_layer(name):
    """A real (uncompressed) tar holding one small file: the layer every image of a repo shares."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        data = f"{name}\n".encode()
        info = tarfile.TarInfo("etc/scale-id")
        info.size, info.mtime = len(data), 0
        tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def repository_layout(catalog, i):
    """Layout of repository i: TAGS images named t00.., one shared layer, a config each."""
    path = catalog / "layouts" / f"r{i:04d}"
    if (path / "index.json").exists():
        return
    layout = Layout(path)
    layer = layout.blob(tar_layer(repo_name(i)), "application/vnd.oci.image.layer.v1.tar")
    for t in range(TAGS):
        layout.image(layer, {"repository": repo_name(i), "tag": f"t{t:02d}"}, ref=f"t{t:02d}")
    layout.close()


def single_layout(catalog, name):
    """A one-image (apko-shaped, unnamed) layout, new content for each name."""
    path = catalog / "single" / name
    if not (path / "index.json").exists():
        layout = Layout(path)
        layer = layout.blob(tar_layer(name), "application/vnd.oci.image.layer.v1.tar")
        layout.image(layer, {"single": name})
        layout.close()
    return path


def config(catalog, name, repos):
    path = catalog / f"{name}.toml"
    path.write_text("".join(f'[[image]]\nlayout = "layouts/r{i:04d}"\nrepository = "{repo_name(i)}"\n\n'
                            for i in repos))
    return path


class Bench:
    def __init__(self, garage, bucket, regpress=REGPRESS):
        self.garage = garage
        self.bucket = bucket
        self.regpress = regpress
        self.target = ["--to", f"s3://{bucket}", "--endpoint", garage.endpoint, "--region", "garage"]

    def run(self, *args, expect=None):
        """One regpress command with --report: wall, CPU, peak RSS and the report."""
        fd, report = tempfile.mkstemp(suffix=".json", dir=BENCH)
        os.close(fd)
        report = pathlib.Path(report)
        result = harness.measure([self.regpress, *args, "--report", report, "-q"], env=self.garage.env,
                                 stats=BENCH / "time.txt")
        result["report"] = json.loads(report.read_text())
        report.unlink()
        result["requests"] = result["report"].get("requests")
        if expect:
            expect(result["report"], args)
        return result

    def publish(self, *args, expect=None):
        return self.run("publish", *args, *self.target, expect=expect)

    def operations(self, catalog, size, label, web):
        """Every measured operation at this size, run by this binary (`label` keeps its new
        image, tag and repository apart from another binary's)."""
        new = single_layout(catalog, f"new-{size}-{label}")
        r = {}
        r["one new image"] = self.publish(new, "--repo", repo_name(0), "--tag", f"new-{size}-{label}")
        r["one image no-op"] = self.publish(new, "--repo", repo_name(0), "--tag", f"new-{size}-{label}",
                                            expect=writes_nothing)
        r["move one tag"] = self.publish(new, "--repo", repo_name(0), "--tag", "moving")
        r["new repository"] = self.publish(new, "--repo", f"scale/new-{size}-{label}", "--tag", "v1")
        r["whole catalog no-op"] = self.publish("--config", config(catalog, f"all-{size}", range(size)),
                                                expect=writes_nothing)
        r["gc, nothing to delete"] = self.run("gc", *self.target, expect=deletes_nothing)
        r["check one repository"] = self.run("check", web, "--repo", repo_name(1), expect=crawls_clean)
        for op in OPERATIONS:
            print(f"  {label:8} {op:24} {r[op]['requests']!s:>7} requests {r[op]['wall']:8.2f}s "
                  f"{r[op]['rss_mb']:7.0f} MB", flush=True)
        return r


def writes_nothing(report, args):
    if report["objects_written"]:
        sys.exit(f"expected a no-op, wrote {report['objects_written']} objects: {args}")


def deletes_nothing(report, args):
    if report["deleted"] or report["garbage"]:
        sys.exit(f"gc was to delete nothing, deleted {report['deleted']}: {args}")


def crawls_clean(report, args):
    if report["problems"]:
        sys.exit(f"check found problems: {report['problems'][:3]}")


OPERATIONS = ["one new image", "one image no-op", "move one tag", "new repository",
              "whole catalog no-op", "gc, nothing to delete", "check one repository"]


def grow(args):
    """The scale table: one bucket grown through the sizes, each measured."""
    catalog = BENCH / "catalog"
    sizes = [int(s) for s in args.sizes.split(",")]
    start = time.monotonic()
    for i in range(max(sizes)):
        repository_layout(catalog, i)
    print(f"generated {max(sizes)} layouts of {TAGS} images in {time.monotonic() - start:.1f}s", flush=True)
    garage = harness.Garage(BENCH / "garage", PORTS)
    rows, growth = {}, {}
    try:
        bench = Bench(garage, garage.bucket("scale"))
        binaries = [("before", Bench(garage, bench.bucket, pathlib.Path(args.baseline)))] if args.baseline else []
        binaries.append(("after" if args.baseline else "", bench))
        garage.expose(bench.bucket)
        web = f"http://{garage.web}"
        bench.publish(single_layout(catalog, "seed"), "--repo", repo_name(0), "--tag", "moving")
        have = 0
        for size in sizes:
            built = bench.publish("--config", config(catalog, f"grow-{size}", range(have, size)))
            growth[size] = {"wall": built["wall"], "requests": built["requests"],
                            "written": built["report"]["objects_written"], "rss_mb": built["rss_mb"]}
            print(f"{size} repositories: grew by {size - have} in {built['wall']:.1f}s "
                  f"({built['report']['objects_written']} objects)", flush=True)
            have = size
            rows[size] = {label: b.operations(catalog, size, label, web) for label, b in binaries
                          if label != "before" or size <= args.baseline_max}
            rows[size]["keys"] = rows[size][binaries[-1][0]]["gc, nothing to delete"]["report"]["objects_listed"]
    finally:
        garage.stop()
    return rows, growth


def shards(args):
    """The sharded table: N publishers at once, one bucket, each its shard of one catalog."""
    catalog = BENCH / "catalog"
    for i in range(args.shard_repos):
        repository_layout(catalog, i)
    whole = config(catalog, f"all-{args.shard_repos}", range(args.shard_repos))
    garage = harness.Garage(BENCH / "garage", PORTS)
    table = {}
    try:
        for n in [int(s) for s in args.shards.split(",")]:
            bench = Bench(garage, garage.bucket(f"shard-{n}"))

            def together(expect=None):
                procs, start = [], time.monotonic()
                for k in range(n):
                    report = BENCH / f"shard-{n}-{k}.json"
                    stats = BENCH / f"shard-{n}-{k}.time"
                    cmd = ["/usr/bin/time", "-f", "%M", "-o", stats, REGPRESS, "publish", "--config", whole,
                           "--shard", f"{k + 1}/{n}", *bench.target, "--report", report, "-q"]
                    procs.append((subprocess.Popen(list(map(str, cmd)), env=garage.env), report, stats))
                for proc, _, _ in procs:
                    if proc.wait() != 0:
                        sys.exit(f"a shard of {n} failed (exit {proc.returncode})")
                wall = time.monotonic() - start
                reports = [json.loads(r.read_text()) for _, r, _ in procs]
                for report in reports:
                    if expect:
                        expect(report, ["--shard", n])
                return {"wall": wall, "rss_mb": max(int(s.read_text().split()[-1]) for _, _, s in procs) / 1024,
                        "requests": sum(r["requests"] for r in reports),
                        "written": sum(r["objects_written"] for r in reports),
                        "lists_repaired": sum(r["lists_repaired"] for r in reports)}

            cold = together()
            again = together(expect=writes_nothing)
            left = bench.publish("--config", whole, "--dry-run")["report"]["objects_to_write"]
            if left:
                sys.exit(f"{n} shards left {left} objects unwritten (tag lists or catalog lost a race?)")
            table[n] = {"cold": cold, "again": again}
            print(f"{n} shards: {cold['wall']:.1f}s, {cold['requests']} requests, {cold['written']} written, "
                  f"{cold['lists_repaired']} lists re-settled; re-run {again['wall']:.1f}s, "
                  f"{again['written']} written", flush=True)
    finally:
        garage.stop()
    return table


def labels(rows):
    """The binaries measured, baseline first."""
    first = rows[min(rows)]
    return [k for k in first if k != "keys"]


def markdown(rows, growth, sharded, args):
    out = []
    if rows:
        sizes = sorted(rows)
        names = labels(rows)
        head = " | ".join(f"{s:,} repos, {rows[s]['keys']:,} keys" for s in sizes)
        what = " (" + " → ".join(names) + ")" if len(names) > 1 else ""
        for metric, unit, fmt in (("requests", "requests", "{}"), ("wall", "wall s", "{:.2f}"),
                                  ("rss_mb", "peak RSS MB", "{:.0f}")):
            out += [f"{unit}{what}:", "", f"| operation | {head} |", "| --- |" + " ---: |" * len(sizes)]
            for op in OPERATIONS:
                cells = " | ".join(" → ".join("-" if n not in rows[s] or rows[s][n][op][metric] is None
                                              else fmt.format(rows[s][n][op][metric]) for n in names) for s in sizes)
                out.append(f"| {op} | {cells} |")
            out.append("")
        cells = " | ".join(f"{growth[s]['written']:,} objects, {growth[s]['requests']:,} requests, "
                           f"{growth[s]['wall']:.1f} s, {growth[s]['rss_mb']:.0f} MB" for s in sizes)
        out += ["growing the bucket to each size (one publish of the repositories added):", "",
                f"| | {head} |", "| --- |" + " ---: |" * len(sizes), f"| grow | {cells} |", ""]
    if sharded:
        out += [f"{args.shard_repos} repositories x {TAGS} tags, N publishers at once into one bucket:", "",
                "| shards | wall s | requests | objects written | lists re-settled | peak RSS MB (one publisher) "
                "| re-run wall s | re-run requests | re-run written |",
                "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for n, t in sorted(sharded.items()):
            c, a = t["cold"], t["again"]
            out.append(f"| {n} | {c['wall']:.1f} | {c['requests']} | {c['written']} | {c['lists_repaired']} | "
                       f"{c['rss_mb']:.0f} | {a['wall']:.2f} | {a['requests']} | {a['written']} |")
        out.append("")
    return "\n".join(out)


def plot(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    sizes = sorted(rows)
    names = labels(rows)
    keys = [rows[s]["keys"] for s in sizes]
    fig, (req, wall, rss) = plt.subplots(1, 3, figsize=(17, 5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, op in enumerate(OPERATIONS):
        for n in names:
            style = "--" if n == "before" else "-"
            label = f"{op} ({n})" if n else op
            have = [(k, rows[s][n][op]) for k, s in zip(keys, sizes) if n in rows[s]]
            counted = [(k, r["requests"]) for k, r in have if r["requests"] is not None]
            if counted:
                req.plot(*zip(*counted), style, marker="o", color=colors[i % len(colors)], label=label)
            wall.plot([k for k, _ in have], [r["wall"] for _, r in have], style, marker="o",
                      color=colors[i % len(colors)], label=label)
            rss.plot([k for k, _ in have], [r["rss_mb"] for _, r in have], style, marker="o",
                     color=colors[i % len(colors)], label=label)
    rss.axhline(256 * 1.048576, color="grey", linestyle=":", linewidth=1)
    rss.annotate("target: 256 MiB", (keys[0], 256 * 1.048576 * 1.08), fontsize=8, color="grey")
    for ax, what in ((req, "requests"), (wall, "wall time, s"), (rss, "peak RSS, MB")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("keys in the bucket")
        ax.set_ylabel(what)
        ax.grid(True, which="both", alpha=0.3)
    req.legend(fontsize=7)
    fig.suptitle(f"regpress at scale: {', '.join(f'{s:,}' for s in sizes)} repositories x {TAGS} tags "
                 "(Garage, one machine)" + ("; dashed: before" if "before" in names else ""))
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10,100,1000,2000", help="repositories at each measured size")
    ap.add_argument("--shards", default="", help="publishers at once for the sharded mode, e.g. 1,2,4,8")
    ap.add_argument("--shard-repos", type=int, default=100, help="the sharded mode's catalog, in repositories")
    ap.add_argument("--no-grow", action="store_true", help="only the sharded mode")
    ap.add_argument("--plot", default=str(harness.ROOT / "docs" / "scale.png"))
    ap.add_argument("--baseline", help="another regpress binary to measure at each size too (before a change)")
    ap.add_argument("--baseline-max", type=int, default=1 << 30, help="measure --baseline only up to this size")
    ap.add_argument("--replot", metavar="JSON", help="only redraw --plot from the scale.json of an earlier run")
    args = ap.parse_args()
    if args.replot:
        saved = json.loads(pathlib.Path(args.replot).read_text())["rows"]
        plot({int(size): r for size, r in saved.items()}, args.plot)
        return print(f"plot: {args.plot}")
    BENCH.mkdir(parents=True, exist_ok=True)
    rows, growth = ({}, {}) if args.no_grow else grow(args)
    sharded = shards(args) if args.shards else {}
    text = markdown(rows, growth, sharded, args)
    (BENCH / "scale.md").write_text(text)
    keep = ("wall", "cpu", "rss_mb", "requests")
    (BENCH / "scale.json").write_text(json.dumps({
        "rows": {s: {n: v if n == "keys" else {op: {m: v[op][m] for m in keep} for op in OPERATIONS}
                     for n, v in r.items()} for s, r in rows.items()},
        "growth": growth, "shards": sharded}, indent=1))
    print("\n" + text)
    if rows:
        plot(rows, args.plot)
        print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
