//! `phr`: the patient's command-line client (its code is the `phr-cli` library, cli/).

fn main() -> std::process::ExitCode {
    phr_cli::main()
}
