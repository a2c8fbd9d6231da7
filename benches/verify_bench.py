#!/usr/bin/env python3
"""Verification side by side: regpress against the tools users would otherwise run to check the
same things, in one run, as ratios.

- Sigstore bundle verification (keyless, Rekor v1, production root, offline):
  `regpress sigstore verify-bundle` vs sigstore-python's `sigstore verify identity --offline`
  on the sigstore-conformance happy-path bundle; and the in-toto DSSE bundle.
- SBOM validation: `regpress verify --sbom required --ntia require` of the apko golden layout
  (layout digests + its 3 SPDX SBOMs: schema, references, binding, NTIA) vs spdx-tools'
  `pyspdxtools -i` on the same 3 SBOMs (parse + validate only).

Each command runs `--runs` times; the table shows the median wall time, CPU time and peak RSS.
Run with `benches/verify.sh` (it installs sigstore-python and spdx-tools in a venv).
"""

import argparse
import pathlib
import statistics
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from harness import BENCH, REGPRESS, ROOT, measure  # noqa: E402

VENV = BENCH / "venv"
CASES = ROOT / "fixtures" / "sigstore-conformance" / "bundle-verify"
IDENTITY = (
    "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/"
    ".github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main"
)
ISSUER = "https://token.actions.githubusercontent.com"
GOLDEN = ROOT / "fixtures" / "apko" / "golden"


def median_of(cmd, runs):
    results = [measure(cmd) for _ in range(runs)]
    return {k: statistics.median(r[k] for r in results) for k in ("wall", "cpu", "rss_mb")}


def bundle_rows(case, artifact, runs):
    bundle = CASES / case / "bundle.sigstore.json"
    ours = median_of(
        [REGPRESS, "sigstore", "verify-bundle", "--bundle", bundle,
         "--certificate-identity", IDENTITY, "--certificate-oidc-issuer", ISSUER, artifact],
        runs,
    )
    theirs = median_of(
        [VENV / "bin" / "sigstore", "verify", "identity", "--offline", "--bundle", bundle,
         "--cert-identity", IDENTITY, "--cert-oidc-issuer", ISSUER, artifact],
        runs,
    )
    return [(f"bundle {case}: regpress", ours, ours), (f"bundle {case}: sigstore-python", theirs, ours)]


def sbom_rows(runs):
    ours = median_of(
        [REGPRESS, "verify", GOLDEN, "--sbom", "required", "--ntia", "require", "-q"], runs
    )
    sboms = sorted((GOLDEN / "sboms").glob("*.spdx.json"))
    theirs = [median_of([VENV / "bin" / "pyspdxtools", "-i", s], runs) for s in sboms]
    total = {
        "wall": sum(t["wall"] for t in theirs),
        "cpu": sum(t["cpu"] for t in theirs),
        "rss_mb": max(t["rss_mb"] for t in theirs),
    }
    return [("golden + 3 SBOMs: regpress verify", ours, ours),
            ("3 SBOMs: pyspdxtools -i (x3)", total, ours)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=11)
    args = parser.parse_args()
    rows = bundle_rows("happy-path-v0.3", CASES / "a.txt", args.runs)
    rows += bundle_rows(
        "happy-path-intoto-in-dsse-v3", CASES / "a.txt", args.runs
    )
    rows += sbom_rows(args.runs)
    print(f"median of {args.runs} runs")
    print(f"{'what':<52} {'wall s':>8} {'cpu s':>7} {'rss MB':>7} {'wall ×':>7}")
    for label, r, base in rows:
        print(f"{label:<52} {r['wall']:>8.3f} {r['cpu']:>7.3f} {r['rss_mb']:>7.1f} "
              f"{r['wall'] / base['wall']:>7.1f}")


if __name__ == "__main__":
    main()
