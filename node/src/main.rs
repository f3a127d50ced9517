//! `phr-node`: the clinic's always-on daemon. Its full surface arrives with issue #5; until
//! then it only states what it is, so scripts can already probe for it.

fn main() {
    println!(
        "phr-node {}: the clinic node is not yet available in this build (see issue #5)",
        env!("CARGO_PKG_VERSION")
    );
}
