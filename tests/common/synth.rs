//! Synthetic OCI layouts for tests and benchmarks: multi-arch apko-shaped layouts whose images
//! share base layers, the common (skopeo-style, named) shape, Docker media types, and broken
//! variants of each kind verification must refuse.
//!
//! Layers are real gzip-compressed tar archives of deterministic pseudo-random bytes, configs
//! carry matching `diff_ids`, so real clients can pull and unpack what is generated.

#![allow(dead_code)]

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

pub fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(bytes))
}

/// Deterministic pseudo-random bytes (splitmix64): incompressible, reproducible.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A compressed layer and the digest of its uncompressed tar.
#[derive(Clone, Debug)]
pub struct Layer {
    pub bytes: Vec<u8>,
    pub diff_id: String,
}

impl Layer {
    /// A tar.gz holding one file of `size` pseudo-random bytes named after the seed.
    pub fn new(seed: u64, size: usize) -> Layer {
        let data = noise(seed, size);
        let mut tar = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_cksum();
        tar.append_data(&mut header, format!("data/layer-{seed}.bin"), &data[..])
            .expect("tar append");
        let tar = tar.into_inner().expect("tar finish");
        let diff_id = digest_of(&tar);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).expect("gzip");
        Layer {
            bytes: gz.finish().expect("gzip finish"),
            diff_id,
        }
    }

    pub fn digest(&self) -> String {
        digest_of(&self.bytes)
    }
}

/// Which media types to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    Oci,
    Docker,
}

/// What was generated.
#[derive(Clone, Debug)]
pub struct Generated {
    pub dir: PathBuf,
    /// Digest of the image index (for apko shape, of index.json itself).
    pub index_digest: String,
    /// The index bytes.
    pub index_bytes: Vec<u8>,
    /// Platform manifest digests, in index order.
    pub manifests: Vec<String>,
    /// Every config and layer digest.
    pub blobs: Vec<String>,
}

impl Generated {
    fn new(dir: &Path) -> Generated {
        Generated {
            dir: dir.to_path_buf(),
            index_digest: String::new(),
            index_bytes: Vec::new(),
            manifests: Vec::new(),
            blobs: Vec::new(),
        }
    }
}

/// Write `bytes` as a blob of the layout in `dir`; returns its digest.
pub fn write_blob(dir: &Path, bytes: &[u8]) -> String {
    let hex = sha256_hex(bytes);
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).expect("mkdir blobs");
    fs::write(blobs.join(&hex), bytes).expect("write blob");
    format!("sha256:{hex}")
}

pub fn blob_path(dir: &Path, digest: &str) -> PathBuf {
    dir.join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
}

/// One synthetic multi-arch image: `base` layers shared with other images (and `arch_base`,
/// shared per platform, by position), then unique layers per platform: one of each size in
/// `small_layers` and one of `app_size` bytes.
#[derive(Clone, Debug)]
pub struct Image<'a> {
    pub name: &'a str,
    pub seed: u64,
    pub base: &'a [Layer],
    pub arch_base: &'a [Vec<Layer>],
    pub small_layers: &'a [usize],
    pub app_size: usize,
    pub platforms: &'a [&'a str],
    pub flavor: Flavor,
}

/// Write all blobs of `image`; returns its image index JSON.
fn build_index(dir: &Path, image: &Image, out: &mut Generated) -> Value {
    let Image {
        name,
        seed,
        base,
        arch_base,
        small_layers,
        app_size,
        platforms,
        flavor,
    } = *image;
    let (index_type, manifest_type, config_type, layer_type) = match flavor {
        Flavor::Oci => (OCI_INDEX, OCI_MANIFEST, OCI_CONFIG, OCI_LAYER),
        Flavor::Docker => (DOCKER_LIST, DOCKER_MANIFEST, DOCKER_CONFIG, DOCKER_LAYER),
    };
    let mut entries = Vec::new();
    for (i, arch) in platforms.iter().enumerate() {
        let unique: Vec<Layer> = small_layers
            .iter()
            .chain([&app_size])
            .enumerate()
            .map(|(j, size)| Layer::new(seed * 1000 + i as u64 * 100 + j as u64, *size))
            .collect();
        let own_base = arch_base.get(i).map(Vec::as_slice).unwrap_or_default();
        let layers: Vec<&Layer> = base.iter().chain(own_base).chain(&unique).collect();
        let config = json!({
            "architecture": arch,
            "os": "linux",
            "config": {"Env": ["PATH=/usr/bin:/bin"], "Labels": {"name": name}},
            "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>()},
        });
        let config_bytes = serde_json::to_vec(&config).expect("json");
        let config_digest = write_blob(dir, &config_bytes);
        out.blobs.push(config_digest.clone());
        let mut layer_descs = Vec::new();
        for layer in &layers {
            let d = write_blob(dir, &layer.bytes);
            out.blobs.push(d.clone());
            layer_descs
                .push(json!({"mediaType": layer_type, "size": layer.bytes.len(), "digest": d}));
        }
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": manifest_type,
            "config": {"mediaType": config_type, "size": config_bytes.len(), "digest": config_digest},
            "layers": layer_descs,
        });
        let manifest_bytes = serde_json::to_vec(&manifest).expect("json");
        let manifest_digest = write_blob(dir, &manifest_bytes);
        out.manifests.push(manifest_digest.clone());
        entries.push(json!({
            "mediaType": manifest_type,
            "size": manifest_bytes.len(),
            "digest": manifest_digest,
            "platform": {"architecture": arch, "os": "linux"},
        }));
    }
    json!({"schemaVersion": 2, "mediaType": index_type, "manifests": entries,
           "annotations": {"org.opencontainers.image.title": name}})
}

fn write_marker(dir: &Path) {
    fs::create_dir_all(dir).expect("mkdir layout");
    fs::write(
        dir.join("oci-layout"),
        br#"{"imageLayoutVersion": "1.0.0"}"#,
    )
    .expect("oci-layout");
}

/// An apko-shaped layout: `index.json` is the multi-arch image index.
pub fn apko_layout(dir: &Path, image: &Image) -> Generated {
    write_marker(dir);
    let mut out = Generated::new(dir);
    let index = build_index(dir, image, &mut out);
    let bytes = serde_json::to_vec(&index).expect("json");
    fs::write(dir.join("index.json"), &bytes).expect("index.json");
    out.index_digest = digest_of(&bytes);
    out.index_bytes = bytes;
    out
}

/// A common-shape layout (as skopeo writes): `index.json` lists one image index per tag, each
/// with an `org.opencontainers.image.ref.name` annotation.
pub fn named_layout(
    dir: &Path,
    images: &[(&str, u64)],
    base: &[Layer],
    app_size: usize,
) -> Vec<Generated> {
    write_marker(dir);
    let mut entries = Vec::new();
    let mut all = Vec::new();
    for (tag, seed) in images {
        let mut out = Generated::new(dir);
        let image = Image {
            name: tag,
            seed: *seed,
            base,
            app_size,
            platforms: &["amd64", "arm64"],
            flavor: Flavor::Oci,
            arch_base: &[],
            small_layers: &[],
        };
        let index = build_index(dir, &image, &mut out);
        let bytes = serde_json::to_vec(&index).expect("json");
        out.index_digest = write_blob(dir, &bytes);
        entries.push(json!({
            "mediaType": OCI_INDEX, "size": bytes.len(), "digest": out.index_digest,
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }));
        out.index_bytes = bytes;
        all.push(out);
    }
    let index = json!({"schemaVersion": 2, "manifests": entries});
    fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&index).expect("json"),
    )
    .expect("index.json");
    all
}

/// Ways to break a generated apko-shaped layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Breakage {
    /// One byte of a layer flipped (same size).
    FlippedByte,
    /// A layer blob deleted.
    MissingBlob,
    /// A layer blob one byte longer than its descriptor says.
    WrongSize,
    /// A platform manifest that is not JSON (index.json updated to its digest and size).
    BadJson,
    /// index.json says a platform manifest is an index.
    WrongMediaType,
    /// A layer blob replaced by a symlink to an identical file outside the layout.
    SymlinkEscape,
    /// A platform manifest over 4 MiB (index.json updated to its digest and size).
    OversizedManifest,
}

impl Breakage {
    pub const ALL: [Breakage; 7] = [
        Breakage::FlippedByte,
        Breakage::MissingBlob,
        Breakage::WrongSize,
        Breakage::BadJson,
        Breakage::WrongMediaType,
        Breakage::SymlinkEscape,
        Breakage::OversizedManifest,
    ];

    /// Words the error message must contain.
    pub fn expected_reason(self) -> &'static str {
        match self {
            Breakage::FlippedByte => "digest mismatch",
            Breakage::MissingBlob => "missing",
            Breakage::WrongSize => "size mismatch",
            Breakage::BadJson => "not valid JSON",
            Breakage::WrongMediaType => "but the document says",
            Breakage::SymlinkEscape => "leaves the layout directory",
            Breakage::OversizedManifest => "limit",
        }
    }

    /// The digest the error message must name.
    pub fn apply(self, g: &Generated, outside: &Path) -> String {
        let layer = g.blobs[g.blobs.len() - 1].clone();
        match self {
            Breakage::FlippedByte => {
                let p = blob_path(&g.dir, &layer);
                let mut b = fs::read(&p).expect("read");
                let mid = b.len() / 2;
                b[mid] ^= 0x01;
                fs::write(&p, b).expect("write");
                layer
            }
            Breakage::MissingBlob => {
                fs::remove_file(blob_path(&g.dir, &layer)).expect("rm");
                layer
            }
            Breakage::WrongSize => {
                let p = blob_path(&g.dir, &layer);
                let mut b = fs::read(&p).expect("read");
                b.push(0);
                fs::write(&p, b).expect("write");
                layer
            }
            Breakage::SymlinkEscape => {
                let p = blob_path(&g.dir, &layer);
                fs::create_dir_all(outside).expect("mkdir");
                let target = outside.join("escaped-layer");
                fs::copy(&p, &target).expect("copy");
                fs::remove_file(&p).expect("rm");
                std::os::unix::fs::symlink(&target, &p).expect("symlink");
                layer
            }
            Breakage::BadJson => replace_manifest(g, b"{\"schemaVersion\": 2, not json".to_vec()),
            Breakage::OversizedManifest => {
                let mut m: Value = serde_json::from_slice(
                    &fs::read(blob_path(&g.dir, &g.manifests[0])).expect("read"),
                )
                .expect("json");
                m["annotations"] = json!({"padding": "x".repeat(5 << 20)});
                replace_manifest(g, serde_json::to_vec(&m).expect("json"))
            }
            Breakage::WrongMediaType => {
                let mut index: Value =
                    serde_json::from_slice(&fs::read(g.dir.join("index.json")).expect("read"))
                        .expect("json");
                index["manifests"][0]["mediaType"] = json!(OCI_INDEX);
                fs::write(
                    g.dir.join("index.json"),
                    serde_json::to_vec(&index).expect("json"),
                )
                .expect("write");
                g.manifests[0].clone()
            }
        }
    }
}

/// Swap the first platform manifest for `bytes`, pointing index.json at it.
fn replace_manifest(g: &Generated, bytes: Vec<u8>) -> String {
    let digest = write_blob(&g.dir, &bytes);
    let mut index: Value =
        serde_json::from_slice(&fs::read(g.dir.join("index.json")).expect("read")).expect("json");
    index["manifests"][0]["digest"] = json!(digest);
    index["manifests"][0]["size"] = json!(bytes.len());
    fs::write(
        g.dir.join("index.json"),
        serde_json::to_vec(&index).expect("json"),
    )
    .expect("write");
    digest
}
