//! The `regpress` binary: run the CLI, print any error, exit with its code.

fn main() {
    let code = match regpress::cli::run() {
        Ok(()) => regpress::error::EXIT_OK,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    };
    std::process::exit(code);
}
