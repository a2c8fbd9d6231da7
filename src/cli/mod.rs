//! The command line: [`Cli`], its commands and [`run`], the dispatch. Nothing else lives here.
//!
//! Each command has a file holding its own flags and the pipeline call it makes (`publish.rs`,
//! `verify.rs`, `serve.rs`, `check.rs`, `summarize.rs`, `completions.rs`, `man.rs`,
//! `sigstore.rs`, `trust_root.rs`, `auth.rs`, `gc.rs`, `govern.rs`, `sbom.rs`); the flag groups several commands share are defined once
//! in `flags.rs`, and everything printed about a run is in `print.rs`. Those two use no other
//! file here; the command files use them; this file uses the command files. What stays here is
//! what `regpress --help` shows: the global flags and the list of commands with a line each
//! (each command's examples are in its file).

mod auth;
mod check;
mod completions;
mod flags;
mod gc;
mod govern;
mod man;
mod print;
mod publish;
mod sbom;
mod serve;
mod sigstore;
mod summarize;
mod trust_root;
mod verify;

use clap::{CommandFactory, Parser, Subcommand};

use crate::error::{EXIT_CODES, Error};
use print::Output;

/// Publish OCI image layouts (apko, skopeo, cosign save) as a static container registry.
///
/// Images are verified (every digest, size, media type, signature and SBOM), then written as
/// the files a registry client GETs, so docker, podman, skopeo, containerd and crane pull
/// straight from a bucket's HTTP endpoint or a local preview, with no registry server.
///
/// Start with `regpress publish --help`. Secrets come from the environment: AWS_ACCESS_KEY_ID,
/// AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN (S3/R2), REGPRESS_EVENTS_URL and
/// REGPRESS_EVENTS_TOKEN (publish events).
#[derive(Parser, Debug)]
#[command(name = "regpress", version, after_help = EXIT_CODES, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Print only errors (and what --json asks for).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// Print more. publish: a line per image (digest, signers, attachments, SBOMs,
    /// platforms, objects to write, tags moved) before the table; verify: each image's
    /// platforms too; check: every tag crawled; gc: every object deleted.
    #[arg(short, long, global = true)]
    verbose: bool,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Verify images and publish them to a bucket or directory (only what changed is written).
    Publish(Box<publish::PublishArgs>),
    /// Verify images (digests, signatures, SBOMs) without publishing anything.
    Verify(Box<verify::VerifyArgs>),
    /// Serve a local-directory site as a bucket's website endpoint would, for previews and pulls.
    Serve(serve::ServeArgs),
    /// Crawl a served registry as clients do and verify every digest, size and Content-Type.
    Check(check::CheckArgs),
    /// Turn a publish report into a Markdown job summary and GitHub step outputs (the GitHub
    /// Action runs this after `publish --report`).
    Summarize(summarize::SummarizeArgs),
    /// Print a shell completion script for bash, zsh, fish, elvish or powershell.
    Completions(completions::CompletionsArgs),
    /// Print the man page, or write one page per subcommand into a directory.
    Man(man::ManArgs),
    /// Sigstore tools: verify a bundle as the sigstore-conformance suite drives clients.
    #[command(subcommand)]
    Sigstore(sigstore::SigstoreCommand),
    /// Sigstore's trusted root through TUF: fetch it now and cache it, or show which one is used.
    #[command(subcommand)]
    TrustRoot(trust_root::TrustRootCommand),
    /// The companion handler for private repositories: registry tokens from OIDC identity.
    #[command(subcommand)]
    Auth(auth::AuthCommand),
    /// Delete blobs, manifests and referrers no tag reaches, once older than a grace period.
    Gc(gc::GcArgs),
    /// Apply the config's [[retention]] rules: remove the tags no rule keeps.
    Retain(Box<govern::RetainArgs>),
    /// Take images down: remove every tag reaching a digest, and refuse to publish it again.
    Yank(Box<govern::YankArgs>),
    /// Lift a yank: the digest may be published again.
    Unyank(govern::UnyankArgs),
    /// Questions about the published SBOMs: `sbom search` finds every image containing a
    /// package.
    #[command(subcommand)]
    Sbom(sbom::SbomCommand),
}

/// Parse the command line and run it.
pub fn run() -> Result<(), Error> {
    let cli = Cli::parse();
    let output = Output::new(cli.quiet, cli.verbose);
    match cli.command {
        Command::Publish(args) => publish::run(*args, output),
        Command::Verify(args) => verify::run(*args, output),
        Command::Check(args) => check::run(args, output),
        Command::Summarize(args) => summarize::run(args),
        Command::Completions(args) => completions::run(args, Cli::command()),
        Command::Man(args) => man::run(args, Cli::command()),
        Command::Sigstore(command) => sigstore::run(command, output),
        Command::TrustRoot(command) => trust_root::run(command, output),
        Command::Gc(args) => gc::run(args, output),
        Command::Retain(args) => govern::retain(*args, output),
        Command::Yank(args) => govern::yank(*args, output),
        Command::Unyank(args) => govern::unyank(args, output),
        Command::Sbom(command) => sbom::run(command, output),
        Command::Serve(args) => serve::run(args),
        Command::Auth(command) => auth::run(command),
    }
}
