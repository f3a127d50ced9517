//! `phr-node`: the clinic's always-on record host (its code is the `phr-node` library, node/).

fn main() -> std::process::ExitCode {
    phr_node::main()
}
