//! The `sdm-watch` binary. Everything it does is in the library, in
//! `sdm_watch::commands::dispatch`: compiled there once, not again here.

fn main() -> std::process::ExitCode {
    sdm_watch::commands::dispatch::main()
}
