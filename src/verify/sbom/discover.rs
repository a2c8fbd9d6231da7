//! Finding a layout's SBOM files.
//!
//! An explicit directory (`sboms = "DIR"` in an `[[image]]`, or `--sboms DIR`) is used alone and
//! must hold at least one SBOM. Otherwise the first of these that holds any is used: a `sboms/`
//! directory inside the layout, a `sboms/` directory beside it, then apko's
//! `sbom-*.spdx.json` files (`apko build --sbom-path`) inside the layout or beside it. In a
//! directory, SBOMs are the files named `*.spdx.json`, `*.cdx.json` or `*.cyclonedx.json`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::bind::{Arch, Role};

/// File name endings of SBOMs.
const SUFFIXES: [&str; 3] = [".spdx.json", ".cdx.json", ".cyclonedx.json"];

/// An SBOM file and what its name says it describes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// The file.
    pub path: PathBuf,
    /// From its name.
    pub role: Role,
}

/// The SBOMs found, and where we looked (for messages when none were).
#[derive(Clone, Debug, Default)]
pub struct Discovery {
    /// Sorted by path.
    pub files: Vec<Found>,
    /// The places looked in, in order.
    pub searched: Vec<PathBuf>,
}

/// Why a layout's SBOMs cannot be found.
#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    /// A directory to look in cannot be listed.
    #[error("SBOM directory {}: cannot read: {reason}", dir.display())]
    Unreadable {
        /// The directory.
        dir: PathBuf,
        /// Why.
        reason: io::Error,
    },
    /// The directory named holds no SBOMs.
    #[error(
        "SBOM directory {}: no *.spdx.json, *.cdx.json or *.cyclonedx.json files in it",
        dir.display()
    )]
    Empty {
        /// The directory.
        dir: PathBuf,
    },
}

/// Find `layout`'s SBOMs, in `explicit` if given.
pub fn find(layout: &Path, explicit: Option<&Path>) -> Result<Discovery, DiscoverError> {
    let unreadable = |dir: &Path| {
        let dir = dir.to_path_buf();
        move |reason| DiscoverError::Unreadable { dir, reason }
    };
    if let Some(dir) = explicit {
        let files = list(dir, |_| true).map_err(unreadable(dir))?;
        if files.is_empty() {
            return Err(DiscoverError::Empty {
                dir: dir.to_path_buf(),
            });
        }
        return Ok(Discovery {
            files,
            searched: vec![dir.to_path_buf()],
        });
    }
    let beside = fs::canonicalize(layout)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf));
    let apko = |name: &str| name.starts_with("sbom-") && name.ends_with(".spdx.json");
    let mut places: Vec<(PathBuf, bool)> = vec![(layout.join("sboms"), false)];
    if let Some(parent) = &beside {
        places.push((parent.join("sboms"), false));
    }
    places.push((layout.to_path_buf(), true));
    places.extend(beside.map(|p| (p, true)));
    let mut searched = Vec::new();
    for (dir, apko_only) in places {
        searched.push(if apko_only {
            dir.join("sbom-*.spdx.json")
        } else {
            dir.clone()
        });
        if !dir.is_dir() {
            continue;
        }
        let files = list(&dir, |name| !apko_only || apko(name)).map_err(unreadable(&dir))?;
        if !files.is_empty() {
            return Ok(Discovery { files, searched });
        }
    }
    Ok(Discovery {
        files: Vec::new(),
        searched,
    })
}

/// The SBOM files directly in `dir` whose names `keep` accepts, sorted.
fn list(dir: &Path, keep: impl Fn(&str) -> bool) -> io::Result<Vec<Found>> {
    let entries = fs::read_dir(dir)?;
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(stem) = SUFFIXES.iter().find_map(|s| name.strip_suffix(s)) else {
            continue;
        };
        // Follows symlinks: an SBOM may be linked in from where the build wrote it.
        if !keep(&name) || !entry.path().is_file() {
            continue;
        }
        found.push(Found {
            path: entry.path(),
            role: role(stem),
        });
    }
    found.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(found)
}

/// apko's names: `sbom-index` for the index, `sbom-<arch>` per platform.
fn role(stem: &str) -> Role {
    match stem.strip_prefix("sbom-") {
        Some("index") => Role::Index,
        Some(arch) => Arch::parse(arch).map_or(Role::Any, Role::Arch),
        None => Role::Any,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(path: &Path) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, b"{}").unwrap();
    }

    fn names(d: &Discovery) -> Vec<String> {
        d.files
            .iter()
            .map(|f| f.path.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn roles_follow_apko_names() {
        assert_eq!(role("sbom-index"), Role::Index);
        assert_eq!(
            role("sbom-x86_64"),
            Role::Arch(Arch::parse("x86_64").unwrap())
        );
        assert_eq!(role("sbom-myapp"), Role::Any);
        assert_eq!(role("bom"), Role::Any);
    }

    #[test]
    fn inside_then_beside_then_apko_files() {
        let tmp = tempfile::tempdir().unwrap();
        let layout = tmp.path().join("out/image");
        fs::create_dir_all(&layout).unwrap();
        assert!(find(&layout, None).unwrap().files.is_empty());

        touch(&tmp.path().join("out/sbom-index.spdx.json"));
        touch(&tmp.path().join("out/notes.json"));
        assert_eq!(
            names(&find(&layout, None).unwrap()),
            ["sbom-index.spdx.json"]
        );

        touch(&tmp.path().join("out/sboms/app.cdx.json"));
        touch(&tmp.path().join("out/sboms/readme.txt"));
        assert_eq!(names(&find(&layout, None).unwrap()), ["app.cdx.json"]);

        touch(&layout.join("sboms/sbom-aarch64.spdx.json"));
        touch(&layout.join("sboms/b.cyclonedx.json"));
        let d = find(&layout, None).unwrap();
        assert_eq!(names(&d), ["b.cyclonedx.json", "sbom-aarch64.spdx.json"]);
        assert_eq!(d.searched, [layout.join("sboms")]);
    }

    #[test]
    fn an_explicit_directory_must_hold_sboms() {
        let tmp = tempfile::tempdir().unwrap();
        let nope = tmp.path().join("nope");
        let e = find(tmp.path(), Some(&nope)).unwrap_err();
        assert!(
            matches!(&e, DiscoverError::Unreadable { dir, reason }
                if *dir == nope && reason.kind() == io::ErrorKind::NotFound),
            "{e:?}"
        );
        assert!(e.to_string().contains(": cannot read: "), "{e}");
        let e = find(tmp.path(), Some(tmp.path())).unwrap_err();
        assert!(
            matches!(&e, DiscoverError::Empty { dir } if dir == tmp.path()),
            "{e:?}"
        );
        assert!(e.to_string().contains("no *.spdx.json"), "{e}");
        touch(&tmp.path().join("x.spdx.json"));
        assert_eq!(
            names(&find(tmp.path(), Some(tmp.path())).unwrap()),
            ["x.spdx.json"]
        );
    }
}
