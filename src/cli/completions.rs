//! `regpress completions`: a shell completion script, generated from the command definition.
//!
//! [`super::run`] passes that definition in, so this file does not depend on [`super`].

use clap::Args;

use crate::error::Error;

#[derive(Args, Debug)]
#[command(after_help = "\
Install:
  bash:  regpress completions bash > /etc/bash_completion.d/regpress
  zsh:   regpress completions zsh > \"${fpath[1]}/_regpress\"
  fish:  regpress completions fish > ~/.config/fish/completions/regpress.fish")]
pub(super) struct CompletionsArgs {
    /// The shell.
    #[arg(value_name = "SHELL")]
    shell: clap_complete::Shell,
}

/// Print the script for `command` (the whole `regpress` command line).
pub(super) fn run(args: CompletionsArgs, mut command: clap::Command) -> Result<(), Error> {
    clap_complete::generate(args.shell, &mut command, "regpress", &mut std::io::stdout());
    Ok(())
}
