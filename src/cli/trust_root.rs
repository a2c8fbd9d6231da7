//! `regpress trust-root`: fetch Sigstore's trusted root through TUF now (`update`, as
//! `cosign initialize` does), or say which root a verification would use (`show`).
//!
//! Its flags (the TUF group shared with publish and verify, from [`super::flags`]) and the
//! calls to [`crate::verify::tuf`].

use clap::Subcommand;

use super::flags::TufArgs;
use super::print::{self, Output};
use crate::error::{EXIT_CODES, Error};
use crate::verify::trust::PolicySpec;
use crate::verify::tuf::{self, TufError};

#[derive(Subcommand, Debug)]
pub(super) enum TrustRootCommand {
    /// Fetch the trusted root through TUF now and cache it (for a later --offline run, or
    /// before a CI job loses the network). Any failure is an error, an unreachable repository
    /// too.
    #[command(after_help = EXIT_CODES)]
    Update(TufArgs),
    /// Say which trusted root publish and verify would use, as they would choose it (fetched,
    /// else cached, else built in), and what it lists: transparency logs, certificate
    /// authorities, CT logs, timestamp authorities.
    #[command(after_help = EXIT_CODES)]
    Show(TufArgs),
}

/// Run a `trust-root` subcommand.
pub(super) fn run(command: TrustRootCommand, output: Output) -> Result<(), Error> {
    let (args, update) = match &command {
        TrustRootCommand::Update(args) => (args, true),
        TrustRootCommand::Show(args) => (args, false),
    };
    let mut spec = PolicySpec::default();
    args.apply(&mut spec);
    let source = spec.tuf_source();
    if update && source.offline {
        return Err(Error::Usage(
            "trust-root update fetches: it cannot be --offline".to_string(),
        ));
    }
    let fetched = if update {
        tuf::update(&source)
    } else {
        tuf::resolve(&source)
    }
    .map_err(|e: TufError| {
        if e.is_usage() {
            Error::Usage(e.to_string())
        } else {
            Error::Refused(e.to_string())
        }
    })?;
    print::trusted_root(&fetched, tuf::cache_dir(source.mirror()).as_deref(), output)
}
