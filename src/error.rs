//! The three ways a run can fail, and the exit code each maps to.
//!
//! Callers (CI steps, cron jobs, the GitHub Action) branch on the exit code, so every failure is
//! classified once here: a usage error (bad flags or config), a verification failure (the input
//! images are not fit to publish) or a target error (the store refused or failed a request).

use std::fmt;
use std::path::PathBuf;

use crate::digest::Digest;
use crate::store::StoreError;

/// Exit code when everything succeeded.
pub const EXIT_OK: i32 = 0;
/// Exit code for an unexpected internal failure.
pub const EXIT_INTERNAL: i32 = 1;
/// Exit code for a usage error: bad flags, names, or configuration (clap also uses 2).
pub const EXIT_USAGE: i32 = 2;
/// Exit code when an image failed verification (nothing was written), or `check` found a
/// served registry inconsistent.
pub const EXIT_VERIFY: i32 = 3;
/// Exit code when the target store failed; what was written is consistent, re-run to converge.
pub const EXIT_TARGET: i32 = 4;

/// The exit codes as `--help` lists them (and `summarize` explains a failed publish's code).
pub const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  internal error
  2  usage error (bad flags, names or config)
  3  verification failed or refused by policy: nothing was written (refused: an immutable tag
     would move, a yanked digest; check: the registry is inconsistent)
  4  target error: what was written is consistent; re-run to converge (with several targets,
     the others are complete)";

/// A failure of a whole run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad flags, names or configuration.
    #[error("{0}")]
    Usage(String),
    /// One or more images failed verification.
    #[error("{}", VerifyFailures(.0))]
    Verify(Vec<VerifyError>),
    /// The target store failed.
    #[error(transparent)]
    Target(#[from] StoreError),
    /// A signature bundle over a file or digest did not verify (`sigstore verify-bundle`): no
    /// layout or image to name, only the bundle and what it is over.
    #[error("verification failed: {0}")]
    Refused(String),
    /// The catalog's governance refuses the run (an immutable tag would move, a yanked digest
    /// would be published): nothing was written.
    #[error("refused: {0}")]
    Governance(String),
    /// Some of several targets failed; the others are complete. Each: the target and why.
    #[error("{} of the targets failed (the others are complete; re-run to converge):\n{}", .0.len(), .0.iter().map(|(t, e)| format!("  {t}: {e}")).collect::<Vec<_>>().join("\n"))]
    Targets(Vec<(String, String)>),
    /// A served registry is not what its documents say (`regpress check`).
    #[error("check failed:\n{}", .0.join("\n"))]
    Check(Vec<String>),
    /// Anything else (a bug, or the local machine failing).
    #[error("{0}")]
    Internal(String),
}

impl Error {
    /// The process exit code for this failure.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => EXIT_USAGE,
            Error::Verify(_) => EXIT_VERIFY,
            Error::Target(_) | Error::Targets(_) => EXIT_TARGET,
            Error::Governance(_) => EXIT_VERIFY,
            Error::Refused(_) | Error::Check(_) => EXIT_VERIFY,
            Error::Internal(_) => EXIT_INTERNAL,
        }
    }
}

/// The auth handler's failures keep their exit codes: a config or address problem is a usage
/// error (2), anything else internal (1), as when the handler was a module of this crate.
impl From<regpress_auth::Error> for Error {
    fn from(e: regpress_auth::Error) -> Self {
        if e.is_usage() {
            Error::Usage(e.to_string())
        } else {
            Error::Internal(e.to_string())
        }
    }
}

struct VerifyFailures<'a>(&'a [VerifyError]);

impl fmt::Display for VerifyFailures<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// What is wrong with one piece of a layout, before we know which image it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The digest of the offending blob or document, when there is one.
    pub digest: Option<Digest>,
    /// Why it was refused, in words.
    pub reason: String,
}

impl Problem {
    /// A problem with no particular digest (the layout itself, `index.json`, …).
    pub fn new(reason: impl Into<String>) -> Self {
        Problem {
            digest: None,
            reason: reason.into(),
        }
    }

    /// A problem with the content at `digest`.
    pub fn at(digest: &Digest, reason: impl Into<String>) -> Self {
        Problem {
            digest: Some(digest.clone()),
            reason: reason.into(),
        }
    }

    /// Attach the layout and image this problem was found in.
    pub fn in_image(self, layout: &std::path::Path, image: &str) -> VerifyError {
        VerifyError {
            layout: layout.to_path_buf(),
            image: image.to_string(),
            digest: self.digest,
            reason: self.reason,
        }
    }
}

/// One refusal: which layout, which image, which digest, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct VerifyError {
    /// The layout directory.
    pub layout: PathBuf,
    /// The image, as `repository:tag` or the layout's own name for it.
    pub image: String,
    /// The offending digest, when there is one.
    pub digest: Option<Digest>,
    /// Why it was refused.
    pub reason: String,
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "verification failed: layout {}: image {}",
            self.layout.display(),
            self.image
        )?;
        if let Some(d) = &self.digest {
            write!(f, ": {d}")?;
        }
        write!(f, ": {}", self.reason)
    }
}
