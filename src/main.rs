//! The `recsys` binary: parse arguments, run the command, print errors with
//! their whole chain, exit 2 on error (0 when stdout was closed early, so
//! `recsys … | head` stays quiet).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = recsys::cli::Cli::parse();
    match recsys::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {e:#}");
            if e.downcast_ref::<recsys::cli::GateRejected>().is_some() {
                return ExitCode::from(3);
            }
            ExitCode::from(2)
        }
    }
}
