//! A hand-written sync client for tests that speak the wire protocol badly on purpose
//! (tests/hostile_sync.rs, tests/access.rs, tests/hostile_node.rs): open a raw stream, write
//! and read single messages, hang up.
// Every test file compiles this module; only three use it.
#![allow(dead_code, unused_macros, unused_imports)]

use std::time::Duration;

use phr::sync::wire::{Msg, ReadError, read_msg, write_msg};
use tokio::io::{AsyncRead, AsyncWrite};

/// Open a raw sync stream to `$addr` as the holder of `$key`:
/// `(endpoint, connection, send, recv)`.
macro_rules! dial {
    ($key:expr, $addr:expr) => {{
        let cfg = ::phr::sync::net::NetConfig::local();
        let endpoint = ::phr::sync::net::bind($key, &cfg).await.unwrap();
        let conn = ::phr::sync::net::connect(&endpoint, $addr.clone(), ::phr::sync::net::SYNC_ALPN, &cfg)
            .await
            .unwrap();
        let (send, recv) = conn.open_bi().await.unwrap();
        (endpoint, conn, send, recv)
    }};
}

/// Close what `dial!` opened.
macro_rules! hang_up {
    ($endpoint:expr, $conn:expr) => {{
        $conn.close(0u32.into(), b"bye");
        $endpoint.close().await;
    }};
}

pub(crate) use {dial, hang_up};

/// Write one message.
pub async fn say<W: AsyncWrite + Unpin>(w: &mut W, msg: Msg) {
    write_msg(w, &msg).await.unwrap();
}

/// Read one message; the peer must answer within 20 s.
pub async fn hear<R: AsyncRead + Unpin>(r: &mut R) -> Result<Msg, ReadError> {
    tokio::time::timeout(Duration::from_secs(20), read_msg(r))
        .await
        .expect("the peer answered in time")
        .map(|(m, _)| m)
}
