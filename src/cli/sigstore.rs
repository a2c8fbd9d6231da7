//! `regpress sigstore verify-bundle`: verify one Sigstore bundle over a file or a digest,
//! offline, as the sigstore-conformance suite drives clients.
//!
//! Its flags and the calls to [`crate::verify::trust`] and [`crate::verify::signature`]; the
//! same verification `publish` applies to images, over any artifact.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use sigstore_verify::types::{Artifact, Sha256Hash};

use super::print::{self, Output};
use crate::error::{EXIT_CODES, Error};
use crate::verify::signature;
use crate::verify::trust::{PolicySpec, RootSource, SignerSpec, TrustPolicy};

#[derive(Subcommand, Debug)]
pub(super) enum SigstoreCommand {
    /// Verify a Sigstore bundle over a file or a digest, completely and offline: certificate
    /// chain, signed timestamps, transparency-log proofs, identity or key. Exit 0 = verified.
    #[command(after_help = EXIT_CODES)]
    VerifyBundle(VerifyBundleArgs),
}

#[derive(Args, Debug)]
pub(super) struct VerifyBundleArgs {
    /// Use Sigstore's staging trusted root instead of production.
    #[arg(long, conflicts_with = "trusted_root")]
    staging: bool,
    /// The Sigstore bundle (`*.sigstore.json`).
    #[arg(long, value_name = "FILE")]
    bundle: PathBuf,
    /// The expected certificate identity (exact).
    #[arg(long, value_name = "ID", requires = "certificate_oidc_issuer")]
    certificate_identity: Option<String>,
    /// The expected OIDC issuer of the certificate.
    #[arg(long, value_name = "URL", requires = "certificate_identity")]
    certificate_oidc_issuer: Option<String>,
    /// Verify with this PEM public key instead of a certificate identity.
    #[arg(
        long,
        value_name = "PEM",
        conflicts_with = "certificate_identity",
        required_unless_present = "certificate_identity"
    )]
    key: Option<PathBuf>,
    /// A trusted_root.json (default: Sigstore's production root, embedded).
    #[arg(long, value_name = "FILE")]
    trusted_root: Option<PathBuf>,
    /// The signed artifact: `sha256:<64 hex>` is a digest, anything else a file.
    #[arg(value_name = "FILE_OR_DIGEST")]
    artifact: String,
}

/// Run a `sigstore` subcommand.
pub(super) fn run(command: SigstoreCommand, output: Output) -> Result<(), Error> {
    match command {
        SigstoreCommand::VerifyBundle(args) => verify_bundle(args, output),
    }
}

/// Verify the bundle; a bundle that does not verify is a refusal (exit 3).
fn verify_bundle(args: VerifyBundleArgs, output: Output) -> Result<(), Error> {
    let spec = PolicySpec {
        require: true,
        signers: vec![SignerSpec {
            key: args.key,
            identity: args.certificate_identity,
            issuer: args.certificate_oidc_issuer,
            identity_regexp: None,
        }],
        ..PolicySpec::default()
    };
    let root = match (args.trusted_root, args.staging) {
        (Some(path), _) => RootSource::File(path),
        (None, true) => RootSource::Staging,
        (None, false) => RootSource::Production,
    };
    let policy = TrustPolicy::with_root(&spec, &root).map_err(Error::Usage)?;
    let bundle = signature::read_bundle(&args.bundle).map_err(Error::Usage)?;
    let verified = match artifact_digest(&args.artifact) {
        Some(hex) => {
            let digest = Sha256Hash::from_hex(hex)
                .map_err(|e| Error::Usage(format!("bad digest {}: {e}", args.artifact)))?;
            policy.verify(&bundle, Artifact::from_digest(digest))
        }
        None => {
            let bytes = std::fs::read(&args.artifact).map_err(|e| {
                Error::Usage(format!(
                    "cannot read the artifact {}: {e} (give a file, or a digest as \
                     sha256:<64 hex digits>)",
                    args.artifact
                ))
            })?;
            policy.verify(&bundle, Artifact::from_blob(&bytes))
        }
    };
    match verified {
        Ok(signer) => {
            print::bundle_verified(&args.artifact, &signer, output);
            Ok(())
        }
        Err(reason) => Err(Error::Refused(format!(
            "bundle {} over {}: {reason}",
            args.bundle.display(),
            args.artifact
        ))),
    }
}

/// The hex of an artifact given as a digest: exactly `sha256:` and 64 hex digits, as the
/// sigstore-conformance protocol passes one. Anything else names a file (`sha256:abc` too).
fn artifact_digest(artifact: &str) -> Option<&str> {
    artifact
        .strip_prefix("sha256:")
        .filter(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}
