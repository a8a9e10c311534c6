//! The `squizzle` binary: everything happens in [`squizzle::cli::run`].

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(squizzle::cli::run(std::env::args_os()).code())
}
