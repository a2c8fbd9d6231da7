//! What a run requires of its images beyond intact digests: the SBOM policy (`[sbom]` in the
//! config, `--sbom`, `--sbom-per-platform` and `--ntia` on the command line).
//!
//! One type read by the config, set by the CLI and applied by `verify`, so the three agree on
//! names, defaults and meaning.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Every policy a run applies while verifying.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    /// SBOMs: whether they are required, per platform, and how NTIA completeness is judged.
    pub sbom: SbomPolicy,
}

/// The `[sbom]` table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SbomPolicy {
    /// Whether every image must have at least one SBOM.
    pub policy: Requirement,
    /// Whether every platform manifest of an image that has SBOMs (or must have them) needs its
    /// own SBOM.
    pub per_platform: bool,
    /// What an SBOM lacking an NTIA minimum element does to the run.
    pub ntia: NtiaMode,
}

/// `policy = "required" | "optional"`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Requirement {
    /// An image without an SBOM is refused.
    Required,
    /// SBOMs found are checked; an image without one passes.
    #[default]
    Optional,
}

/// `ntia = "require" | "warn" | "off"`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NtiaMode {
    /// A missing minimum element refuses the image.
    Require,
    /// A missing minimum element is reported as a warning.
    #[default]
    Warn,
    /// Not reported.
    Off,
}

/// A word that names no policy setting.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not `required` or `optional`.
    #[error("SBOM policy {given:?}: expected required or optional")]
    Requirement {
        /// The word given.
        given: String,
    },
    /// Not `require`, `warn` or `off`.
    #[error("NTIA mode {given:?}: expected require, warn or off")]
    NtiaMode {
        /// The word given.
        given: String,
    },
}

impl FromStr for Requirement {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        match s {
            "required" => Ok(Requirement::Required),
            "optional" => Ok(Requirement::Optional),
            _ => Err(ParseError::Requirement {
                given: s.to_string(),
            }),
        }
    }
}

impl FromStr for NtiaMode {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        match s {
            "require" => Ok(NtiaMode::Require),
            "warn" => Ok(NtiaMode::Warn),
            "off" => Ok(NtiaMode::Off),
            _ => Err(ParseError::NtiaMode {
                given: s.to_string(),
            }),
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Requirement::Required => "required",
            Requirement::Optional => "optional",
        })
    }
}

impl fmt::Display for NtiaMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NtiaMode::Require => "require",
            NtiaMode::Warn => "warn",
            NtiaMode::Off => "off",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_defaults_are_lenient() {
        for r in [Requirement::Required, Requirement::Optional] {
            assert_eq!(r.to_string().parse::<Requirement>(), Ok(r));
        }
        for m in [NtiaMode::Require, NtiaMode::Warn, NtiaMode::Off] {
            assert_eq!(m.to_string().parse::<NtiaMode>(), Ok(m));
        }
        let e = "yes".parse::<Requirement>().unwrap_err();
        assert_eq!(
            e,
            ParseError::Requirement {
                given: "yes".into()
            }
        );
        assert_eq!(
            e.to_string(),
            r#"SBOM policy "yes": expected required or optional"#
        );
        assert_eq!(
            "loud".parse::<NtiaMode>(),
            Err(ParseError::NtiaMode {
                given: "loud".into()
            })
        );
        let d = SbomPolicy::default();
        assert_eq!(
            (d.policy, d.per_platform, d.ntia),
            (Requirement::Optional, false, NtiaMode::Warn)
        );
    }
}
