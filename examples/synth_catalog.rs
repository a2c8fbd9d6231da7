//! Generate a deterministic synthetic catalog shaped like a hardened-image catalog, for the
//! benchmark harness (`benches/run.sh`) and for trying regpress at scale.
//!
//! `cargo run --release --example synth_catalog -- OUT [--repos N] [--scale F] [--rebuild NAME]`
//!
//! Writes `OUT/layouts/<name>` (apko-shaped multi-arch layouts, amd64 + arm64),
//! `OUT/tagged/<name>` (the same image in the common shape with a `latest` ref name, blobs
//! hard-linked, for tools that cannot read apko's shape) and `OUT/regpress.toml`.
//! Images share per-origin base layers (4 origins, one set per architecture); each platform adds
//! small unique layers and one app layer; every fifth image's app layer is large. At scale 1 and
//! 40 repositories that is about 1.2 GB of unique layer bytes. `--rebuild NAME` regenerates one
//! image with a new app layer and config (the "one image rebuilt" scenario).

#[path = "../tests/common/synth.rs"]
mod synth;

use std::fs;
use std::path::{Path, PathBuf};

use synth::{Flavor, Image, Layer};

const MIB: f64 = 1024.0 * 1024.0;
const ORIGINS: usize = 4;
const PLATFORMS: [&str; 2] = ["amd64", "arm64"];

struct Args {
    out: PathBuf,
    repos: usize,
    scale: f64,
    rebuild: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let mut out = None;
    let mut parsed = Args {
        out: PathBuf::new(),
        repos: 40,
        scale: 1.0,
        rebuild: None,
    };
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--repos" => {
                parsed.repos = value("--repos")?
                    .parse()
                    .map_err(|e| format!("--repos: {e}"))?
            }
            "--scale" => {
                parsed.scale = value("--scale")?
                    .parse()
                    .map_err(|e| format!("--scale: {e}"))?
            }
            "--rebuild" => parsed.rebuild = Some(value("--rebuild")?),
            _ if out.is_none() && !arg.starts_with('-') => out = Some(PathBuf::from(arg)),
            _ => return Err(format!("unexpected argument {arg:?}")),
        }
    }
    parsed.out = out.ok_or("usage: synth_catalog OUT [--repos N] [--scale F] [--rebuild NAME]")?;
    Ok(parsed)
}

fn size(mib: f64, scale: f64) -> usize {
    (mib * MIB * scale) as usize
}

fn name(i: usize) -> String {
    format!("image-{i:03}")
}

/// The common shape for `image`: index.json names the apko index (stored as a blob) `latest`.
fn write_tagged(apko: &Path, tagged: &Path) -> std::io::Result<()> {
    let _ = fs::remove_dir_all(tagged);
    fs::create_dir_all(tagged.join("blobs/sha256"))?;
    fs::copy(apko.join("oci-layout"), tagged.join("oci-layout"))?;
    for entry in fs::read_dir(apko.join("blobs/sha256"))? {
        let entry = entry?;
        fs::hard_link(
            entry.path(),
            tagged.join("blobs/sha256").join(entry.file_name()),
        )?;
    }
    let index = fs::read(apko.join("index.json"))?;
    let digest = synth::write_blob(tagged, &index);
    let top = serde_json::json!({"schemaVersion": 2, "manifests": [{
        "mediaType": synth::OCI_INDEX, "size": index.len(), "digest": digest,
        "annotations": {"org.opencontainers.image.ref.name": "latest"}}]});
    fs::write(tagged.join("index.json"), serde_json::to_vec(&top)?)
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let origins: Vec<Vec<Vec<Layer>>> = (0..ORIGINS)
        .map(|o| {
            (0..PLATFORMS.len())
                .map(|p| {
                    let seed = 1_000_000 + (o * 10 + p) as u64 * 10;
                    vec![
                        Layer::new(seed, size(30.0, args.scale)),
                        Layer::new(seed + 1, size(2.0, args.scale)),
                    ]
                })
                .collect()
        })
        .collect();
    let small = [
        size(0.02, args.scale),
        size(0.1, args.scale),
        size(0.5, args.scale),
    ];
    let mut config = String::from("[target]\nto = \"site\"\n\n");
    let mut unique_bytes = 0u64;
    for i in 0..args.repos {
        let name = name(i);
        let rebuilt = args.rebuild.as_deref() == Some(name.as_str());
        let layout = args.out.join("layouts").join(&name);
        config.push_str(&format!(
            "[[image]]\nlayout = \"layouts/{name}\"\nrepository = \"hardened/{name}\"\ntags = [\"latest\"]\n\n"
        ));
        if args.rebuild.is_some() && !rebuilt {
            continue;
        }
        let _ = fs::remove_dir_all(&layout);
        let app_mib = if i % 5 == 0 { 40.0 } else { 5.0 };
        let image = Image {
            name: &name,
            seed: (i as u64 + 1) * 7 + if rebuilt { 500_000 } else { 0 },
            base: &[],
            arch_base: &origins[i % ORIGINS],
            small_layers: &small,
            app_size: size(app_mib, args.scale),
            platforms: &PLATFORMS,
            flavor: Flavor::Oci,
        };
        synth::apko_layout(&layout, &image);
        unique_bytes += (PLATFORMS.len() * (small.iter().sum::<usize>() + image.app_size)) as u64;
        if let Err(e) = write_tagged(&layout, &args.out.join("tagged").join(&name)) {
            eprintln!("error: {}: {e}", layout.display());
            std::process::exit(1);
        }
    }
    if args.rebuild.is_none() {
        unique_bytes += origins
            .iter()
            .flatten()
            .flatten()
            .map(|l| l.bytes.len() as u64)
            .sum::<u64>();
        if let Err(e) = fs::write(args.out.join("regpress.toml"), config) {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
    println!(
        "{} repositories, about {:.0} MB of unique layer bytes",
        args.repos,
        unique_bytes as f64 / 1e6
    );
}
