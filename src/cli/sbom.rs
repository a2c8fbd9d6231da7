//! `regpress sbom`: questions about the SBOMs published. `sbom search` answers "which images
//! contain X?" from the package index a publish keeps ([`crate::packages`]).
//!
//! Its flags and the call to [`crate::packages::search`].

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::flags::{TargetArgs, target_only};
use super::print::{self, Output};
use crate::error::{EXIT_CODES, Error};
use crate::packages::Source;

const EXAMPLES: &str = "\
Examples:
  # every repository:tag and platform whose SBOM lists busybox older than 1.36.1-r3
  regpress sbom search --config regpress.toml 'busybox@<1.36.1-r3'
  regpress sbom search --to ./site openssl@3.1.4-r0
  regpress sbom search --to s3://images --endpoint https://<account>.r2.cloudflarestorage.com \\
      pkg:apk/wolfi/glibc --json
  # from a served registry that serves v2/_regpress/ (regpress serve does)
  regpress sbom search http://127.0.0.1:5000 'zlib@<=1.3'";

/// `regpress sbom …`.
#[derive(Subcommand, Debug)]
pub(super) enum SbomCommand {
    /// Which images contain a package? Every repository:tag and platform whose published SBOM
    /// lists it, from the package index (a handful of GETs, not a crawl).
    Search(SearchArgs),
}

#[derive(Args, Debug)]
#[command(after_help = format!("{EXAMPLES}\n\n{EXIT_CODES}"))]
pub(super) struct SearchArgs {
    /// `[URL] QUERY`: QUERY is a package name (any case), `name@version`, `name@<version`,
    /// `name@<=version`, `name@>=version`, or a purl (`pkg:apk/wolfi/busybox[@version]`; type,
    /// namespace and name must agree, qualifiers are ignored). Before it, the base URL of a
    /// served registry to read the index from, instead of --to or --config.
    #[arg(value_name = "[URL] QUERY", num_args = 1..=2, required = true)]
    words: Vec<String>,
    /// A regpress.toml whose `[target]` to search (flags override it).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(flatten)]
    target: TargetArgs,
    /// Print `{"query", "matches": [{"repository", "tag", "digest", "index", "platform",
    /// "package", "version", "purl", "sbom"}], "requests"}` on stdout (what `yank
    /// --from-search` reads).
    #[arg(long)]
    json: bool,
}

/// Run an `sbom` command.
pub(super) fn run(command: SbomCommand, output: Output) -> Result<(), Error> {
    let SbomCommand::Search(args) = command;
    let Some((query, url)) = args.words.split_last() else {
        return Err(Error::Usage("sbom search: no QUERY".to_string()));
    };
    let found = match url.first() {
        Some(url) => {
            if args.config.is_some() || args.target.given() {
                return Err(Error::Usage(
                    "sbom search: give a URL, or --to/--config, not both".to_string(),
                ));
            }
            let client = reqwest::blocking::Client::builder()
                .user_agent(concat!("regpress/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| Error::Internal(format!("HTTP client: {e}")))?;
            let source = Source::Url {
                base: url.clone(),
                client,
            };
            crate::packages::search(&source, query)
        }
        None => {
            let spec = target_only(args.config.as_deref(), args.target)?;
            let target = crate::target::open(&spec, 4)?;
            crate::packages::search(&Source::Store(target.store.as_ref()), query)
        }
    }
    .map_err(Error::Usage)?;
    if args.json {
        return print::json(&found);
    }
    print::found(&found, output);
    Ok(())
}
