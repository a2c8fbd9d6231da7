//! `regpress summarize`: a publish report as a GitHub job summary and step outputs.
//!
//! The GitHub Action's steps stay thin shell: `publish --report FILE` writes the JSON, and this
//! turns it into a Markdown table for `$GITHUB_STEP_SUMMARY` (per image: tags, digest,
//! platforms, size, signature, SBOM and provenance verification, objects written and
//! unchanged) and the
//! `digests` and `report` outputs for `$GITHUB_OUTPUT`. It reads only the report's documented
//! fields, so any report — a dry run's plan too — summarises, and it is tested without a runner.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use indicatif::HumanBytes;
use serde::Deserialize;

/// The fields of publish's `--report` JSON that a summary shows.
#[derive(Debug, Deserialize)]
pub struct PublishReport {
    target: String,
    #[serde(default)]
    name: Option<String>,
    dry_run: bool,
    objects_written: u64,
    bytes_written: u64,
    objects_unchanged: u64,
    bytes_unchanged: u64,
    objects_to_write: u64,
    bytes_to_write: u64,
    requests: u64,
    #[serde(default)]
    images: Vec<Image>,
    events: Option<Events>,
}

#[derive(Debug, Deserialize)]
struct Image {
    repository: String,
    tags: Vec<String>,
    digest: String,
    #[serde(default)]
    platforms: Vec<String>,
    blob_bytes: u64,
    #[serde(default)]
    manifest_bytes: u64,
    #[serde(default)]
    signers: Vec<String>,
    #[serde(default)]
    attachments: Vec<serde_json::Value>,
    #[serde(default)]
    sboms: Vec<Sbom>,
    #[serde(default)]
    provenance: Vec<Provenance>,
    objects_to_write: u64,
    objects_unchanged: u64,
}

#[derive(Debug, Deserialize)]
struct Sbom {
    version: String,
    ntia: String,
}

#[derive(Debug, Deserialize)]
struct Provenance {
    builder_id: String,
    source_repository: Option<String>,
    source_ref: Option<String>,
    signer: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Events {
    url: String,
    delivered: Vec<serde_json::Value>,
    failed: Vec<Failed>,
}

#[derive(Debug, Deserialize)]
struct Failed {
    subject: String,
    error: Option<String>,
}

/// A publish report as `publish --report` writes it: one target's, or, for a config with
/// several `[[target]]`s, a report per target and the targets that failed.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Reports {
    /// Several targets.
    Replicated {
        /// Each complete target's report.
        targets: Vec<PublishReport>,
        /// Each failed target.
        failed: Vec<FailedTarget>,
    },
    /// One target.
    One(Box<PublishReport>),
}

/// A target a replicated publish could not complete.
#[derive(Debug, Deserialize)]
pub struct FailedTarget {
    target: String,
    error: String,
}

impl Reports {
    /// Read a report written by `publish --report`.
    pub fn load(path: &Path) -> Result<Reports, String> {
        let bytes = std::fs::read(path).map_err(|e| {
            format!(
                "cannot read report {}: {e} (write one with `regpress publish --report FILE`)",
                path.display()
            )
        })?;
        let value: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| format!("report {}: {e}", path.display()))?;
        // Untagged enums hide why neither shape fits: decide by the field, then parse.
        let parsed = if value.get("targets").is_some() {
            serde_json::from_value(value)
        } else {
            serde_json::from_value(value).map(|one| Reports::One(Box::new(one)))
        };
        parsed.map_err(|e| {
            format!(
                "report {}: {e} (is it a `regpress publish --report` file?)",
                path.display()
            )
        })
    }

    /// Whether it is a report of several targets.
    pub fn is_replicated(&self) -> bool {
        matches!(self, Reports::Replicated { .. })
    }

    /// The job summary: a section per target, then the targets that failed.
    pub fn markdown(&self) -> String {
        match self {
            Reports::One(one) => one.markdown(),
            Reports::Replicated { targets, failed } => {
                let mut md: String = targets.iter().map(PublishReport::markdown).collect();
                for f in failed {
                    let _ = writeln!(
                        md,
                        "### ❌ regpress failed → `{}`\n\n{}\n\nRe-run to converge: what was \
                         written there is consistent, and the other targets are complete.\n",
                        cell(&f.target),
                        cell(&f.error)
                    );
                }
                md
            }
        }
    }

    /// `repository:tag` → digest, for every tag of every image of every target.
    pub fn digests(&self) -> BTreeMap<String, String> {
        match self {
            Reports::One(one) => one.digests(),
            Reports::Replicated { targets, .. } => {
                targets.iter().flat_map(PublishReport::digests).collect()
            }
        }
    }
}

impl PublishReport {
    /// The job summary: a heading, one table row per image, the totals and any events.
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let heading = if self.dry_run {
            "regpress plan (dry run, nothing written)"
        } else {
            "regpress published"
        };
        let target = match &self.name {
            Some(name) => format!("{name} ({})", self.target),
            None => self.target.clone(),
        };
        let _ = writeln!(md, "### {heading} → `{}`\n", cell(&target));
        let written = if self.dry_run {
            "objects to write / unchanged"
        } else {
            "objects written / unchanged"
        };
        let _ = writeln!(
            md,
            "| image | tags | digest | platforms | size | signature | SBOM | provenance | {written} |"
        );
        let _ = writeln!(
            md,
            "| --- | --- | --- | --- | ---: | --- | --- | --- | ---: |"
        );
        for i in &self.images {
            let tags: Vec<String> = i.tags.iter().map(|t| format!("`{}`", cell(t))).collect();
            let platforms = if i.platforms.is_empty() {
                "—".to_string()
            } else {
                i.platforms.join(", ")
            };
            let _ = writeln!(
                md,
                "| `{}` | {} | `{}` | {platforms} | {} | {} | {} | {} | {} / {} |",
                cell(&i.repository),
                tags.join(", "),
                i.digest,
                HumanBytes(i.blob_bytes + i.manifest_bytes),
                cell(&i.signature()),
                cell(&i.sbom()),
                cell(&i.provenance()),
                i.objects_to_write,
                i.objects_unchanged
            );
        }
        let _ = writeln!(md);
        if self.dry_run {
            let _ = writeln!(
                md,
                "**Plan:** {} objects to write ({}), {} unchanged ({}); nothing was written.",
                self.objects_to_write,
                HumanBytes(self.bytes_to_write),
                self.objects_unchanged,
                HumanBytes(self.bytes_unchanged)
            );
        } else {
            let _ = writeln!(
                md,
                "**Total:** {} objects written ({}), {} unchanged ({}), {} requests.",
                self.objects_written,
                HumanBytes(self.bytes_written),
                self.objects_unchanged,
                HumanBytes(self.bytes_unchanged),
                self.requests
            );
        }
        if let Some(events) = &self.events {
            let _ = writeln!(
                md,
                "\n**Events:** {} delivered to `{}`, {} failed.",
                events.delivered.len(),
                cell(&events.url),
                events.failed.len()
            );
            for f in &events.failed {
                let _ = writeln!(
                    md,
                    "- ⚠️ `{}`: {}",
                    cell(&f.subject),
                    cell(f.error.as_deref().unwrap_or("not delivered"))
                );
            }
        }
        md
    }

    /// `repository:tag` → digest, for every tag of every image.
    pub fn digests(&self) -> BTreeMap<String, String> {
        self.images
            .iter()
            .flat_map(|i| {
                i.tags
                    .iter()
                    .map(|t| (format!("{}:{t}", i.repository), i.digest.clone()))
            })
            .collect()
    }
}

impl Image {
    fn signature(&self) -> String {
        if !self.signers.is_empty() {
            format!("✅ {}", self.signers.join("; "))
        } else if self.attachments.iter().any(|a| a["kind"] == "signature") {
            "⚠️ signed, not verified (no signers in the policy)".to_string()
        } else {
            "none".to_string()
        }
    }

    /// `✅ <source>@<ref> by <builder>` per verified provenance.
    fn provenance(&self) -> String {
        if self.provenance.is_empty() {
            return "none".to_string();
        }
        let each: Vec<String> = self
            .provenance
            .iter()
            .map(|p| {
                let mark = if p.signer.is_some() {
                    "✅"
                } else {
                    "⚠️ not verified:"
                };
                let source = p.source_repository.as_deref().unwrap_or("?");
                let at = p
                    .source_ref
                    .as_deref()
                    .map(|r| format!("@{r}"))
                    .unwrap_or_default();
                format!("{mark} {source}{at} by {}", p.builder_id)
            })
            .collect();
        each.join("; ")
    }

    fn sbom(&self) -> String {
        if self.sboms.is_empty() {
            return "none".to_string();
        }
        let mut versions: BTreeMap<&str, usize> = BTreeMap::new();
        for s in &self.sboms {
            *versions.entry(s.version.as_str()).or_default() += 1;
        }
        let versions: Vec<String> = versions
            .into_iter()
            .map(|(v, n)| format!("{n}× {v}"))
            .collect();
        let ntia = if self.sboms.iter().any(|s| s.ntia == "warn") {
            ", NTIA incomplete"
        } else {
            ""
        };
        format!("✅ {}{ntia}", versions.join(", "))
    }
}

/// The job summary of a publish that failed (exit `code`, which means `meaning` when known) and
/// so left no report to summarise.
pub fn failed(code: i32, meaning: Option<&str>) -> String {
    let meaning = meaning.map(|m| format!(": {m}")).unwrap_or_default();
    format!(
        "### ❌ regpress publish failed (exit {code}{meaning})\n\n\
         See the log of the publish step for what failed and what to do next.\n"
    )
}

/// Text fit for a table cell: no pipes, no line breaks.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// Append `name=value` lines to a GitHub output file, using the heredoc form for a value with
/// line breaks.
pub fn write_outputs(path: &Path, outputs: &[(&str, String)]) -> Result<(), String> {
    let mut text = String::new();
    for (name, value) in outputs {
        if value.contains('\n') {
            let delimiter = format!("regpress_{}", uuid::Uuid::new_v4().simple());
            let _ = writeln!(text, "{name}<<{delimiter}\n{value}\n{delimiter}");
        } else {
            let _ = writeln!(text, "{name}={value}");
        }
    }
    append(path, &text)
}

/// Append `text` to `path` (GitHub's summary and output files are appended to).
pub fn append(path: &Path, text: &str) -> Result<(), String> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| format!("cannot append to {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(dry_run: bool) -> PublishReport {
        serde_json::from_value(serde_json::json!({
            "target": "s3://images", "dry_run": dry_run, "objects_written": 12,
            "bytes_written": 2048, "objects_unchanged": 1, "bytes_unchanged": 2,
            "objects_to_write": 12, "bytes_to_write": 2048, "requests": 15,
            "unknown_fields": "are ignored",
            "images": [{
                "repository": "acme/base", "tags": ["latest", "1.0"], "digest": "sha256:ab",
                "platforms": ["linux/amd64", "linux/arm64"], "blob_bytes": 1000,
                "manifest_bytes": 24, "signers": ["key sha256:k|x"], "attachments": [{"kind": "signature"}],
                "sboms": [{"version": "SPDX-2.3", "ntia": "pass"},
                          {"version": "SPDX-2.3", "ntia": "warn"}],
                "provenance": [{"builder_id": "https://github.com/acme/b/.github/workflows/r.yml@refs/heads/main",
                                "source_repository": "git+https://github.com/acme/b",
                                "source_ref": "refs/heads/main", "signer": "identity x"}],
                "objects_to_write": 9, "objects_unchanged": 1
            }, {
                "repository": "acme/bare", "tags": ["v1"], "digest": "sha256:cd",
                "blob_bytes": 5, "objects_to_write": 0, "objects_unchanged": 4
            }],
            "events": {"url": "https://hooks.example.com/in", "delivered": [{}],
                       "failed": [{"subject": "acme/bare:v1", "error": "HTTP 500"}]}
        }))
        .unwrap()
    }

    #[test]
    fn a_row_per_image_with_totals_and_events() {
        let md = report(false).markdown();
        assert!(
            md.starts_with("### regpress published → `s3://images`"),
            "{md}"
        );
        assert!(md.contains(
            "| `acme/base` | `latest`, `1.0` | `sha256:ab` | linux/amd64, linux/arm64 | 1.00 KiB \
             | ✅ key sha256:k\\|x | ✅ 2× SPDX-2.3, NTIA incomplete | ✅ \
             git+https://github.com/acme/b@refs/heads/main by \
             https://github.com/acme/b/.github/workflows/r.yml@refs/heads/main | 9 / 1 |"
        ), "{md}");
        assert!(
            md.contains(
                "| `acme/bare` | `v1` | `sha256:cd` | — | 5 B | none | none | none | 0 / 4 |"
            ),
            "{md}"
        );
        assert!(md.contains("**Total:** 12 objects written (2.00 KiB), 1 unchanged"));
        assert!(md.contains("1 delivered to `https://hooks.example.com/in`, 1 failed"));
        assert!(md.contains("- ⚠️ `acme/bare:v1`: HTTP 500"));
        let plan = report(true).markdown();
        assert!(plan.contains("plan (dry run, nothing written)"));
        assert!(plan.contains("objects to write / unchanged"));
        assert!(plan.contains("**Plan:** 12 objects to write"));
    }

    #[test]
    fn digests_name_every_tag() {
        let d = report(false).digests();
        assert_eq!(d.len(), 3);
        assert_eq!(d["acme/base:1.0"], "sha256:ab");
        assert_eq!(d["acme/bare:v1"], "sha256:cd");
    }

    #[test]
    fn outputs_use_the_heredoc_form_only_for_multiline_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        std::fs::write(&path, "earlier=1\n").unwrap();
        write_outputs(
            &path,
            &[("report", "/tmp/r.json".into()), ("multi", "a\nb".into())],
        )
        .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(&lines[..2], ["earlier=1", "report=/tmp/r.json"]);
        let delimiter = lines[2].strip_prefix("multi<<").unwrap();
        assert_eq!(&lines[3..], ["a", "b", delimiter]);
    }
}
