//! `regpress verify`: verify images (digests, signatures, SBOMs) and publish nothing.
//!
//! Its flags (the layouts, and the groups shared with publish from [`super::flags`]) and the
//! call to [`crate::publish::verify`].

use std::path::PathBuf;

use clap::Args;

use super::flags::{ImageArgs, ReportArgs, SbomArgs, load_config};
use super::print::{self, Output};
use crate::error::{EXIT_CODES, Error};
use crate::report::VerifyReport;

const EXAMPLES: &str = "\
Examples:
  regpress verify ./out
  regpress verify --config regpress.toml --sbom required --require-signature --json";

#[derive(Args, Debug)]
#[command(after_help = format!("{EXAMPLES}\n\n{EXIT_CODES}"))]
#[command(mut_args(ReportArgs::help(
    "Write a JSON report: per image its digest, platforms, manifests, blobs and signers, and per \
     SBOM what it describes, its packages and its NTIA result",
    "Print that report as JSON on stdout instead of the lines",
)))]
pub(super) struct VerifyArgs {
    /// OCI image layout directories (or use --config).
    #[arg(value_name = "LAYOUT", required_unless_present = "config")]
    layout: Vec<PathBuf>,
    #[command(flatten)]
    images: ImageArgs,
    #[command(flatten)]
    sbom: SbomArgs,
    #[command(flatten)]
    reporting: ReportArgs,
}

/// Verify, and say what was verified.
pub(super) fn run(args: VerifyArgs, output: Output) -> Result<(), Error> {
    let config = load_config(&args.layout, &args.images, &args.sbom, false)?;
    let images = crate::publish::verify(&config, output.progress())?;
    let report = VerifyReport::new(&images, config.policy.sbom);
    if let Some(path) = &args.reporting.report {
        print::write_report(path, &report)?;
    }
    for image in &report.images {
        print::sbom_warnings(&image.sboms, output);
    }
    if args.reporting.json {
        return print::json(&report);
    }
    print::verified(&report, output);
    Ok(())
}
