//! `regpress man`: man pages, generated from the command definition.
//!
//! [`super::run`] passes that definition in, so this file does not depend on [`super`].

use std::path::PathBuf;

use clap::Args;

use crate::error::Error;

#[derive(Args, Debug)]
pub(super) struct ManArgs {
    /// Write regpress.1 and a page per subcommand (regpress-publish.1, …) into this directory
    /// instead of printing regpress.1.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// Print regpress.1 for `command` (the whole `regpress` command line), or write every page.
pub(super) fn run(args: ManArgs, command: clap::Command) -> Result<(), Error> {
    match &args.dir {
        Some(dir) => std::fs::create_dir_all(dir)
            .and_then(|()| clap_mangen::generate_to(command, dir))
            .map_err(|e| Error::Usage(format!("cannot write man pages to {}: {e}", dir.display()))),
        None => clap_mangen::Man::new(command)
            .render(&mut std::io::stdout())
            .map_err(|e| Error::Internal(format!("cannot print the man page: {e}"))),
    }
}
