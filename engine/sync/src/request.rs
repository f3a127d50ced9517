//! One request and one reply per connection, as length-prefixed postcard messages: how the
//! pairing and clinic protocols talk (sync sessions have their own wire format, [`crate::wire`]).

use std::time::Duration;

use iroh::endpoint::Connection;
use serde::{Deserialize, Serialize};

use crate::endpoint::WaitingRoom;
use phr_model::error::{Error, NetworkProblem, Result};

/// Send one message: its length (u32, big-endian), then its postcard encoding.
pub async fn write_postcard<T: Serialize>(send: &mut iroh::endpoint::SendStream, v: &T) -> Result<()> {
    let body = postcard::to_stdvec(v).map_err(|_| Error::internal("a message would not encode"))?;
    send.write_all(&(body.len() as u32).to_be_bytes())
        .await
        .map_err(|e| Error::Network(NetworkProblem::Connection { cause: e.to_string() }))?;
    send.write_all(&body)
        .await
        .map_err(|e| Error::Network(NetworkProblem::Connection { cause: e.to_string() }))?;
    Ok(())
}

/// What a peer that knocked sent first: its stream to answer on and its request, or `None`
/// if no whole request arrived in time.
pub type Knock<T> = (iroh::endpoint::SendStream, Option<Result<T>>);

/// Wait, holding a place in `room`, for a peer that knocked to open its stream and send one
/// request. One 15-second deadline covers both, so a peer that connects and says nothing holds
/// its place no longer than one that sends half a request. `Ok(None)`: it opened no stream in
/// time, and the connection is closed.
pub async fn first_request<T: for<'de> Deserialize<'de>>(
    conn: &Connection,
    room: &WaitingRoom,
) -> std::result::Result<Option<Knock<T>>, iroh::endpoint::ConnectionError> {
    let slot = room.take(conn);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let (send, mut recv) = match tokio::time::timeout_at(deadline, conn.accept_bi()).await {
        Ok(streams) => streams?,
        Err(_) => {
            conn.close(0u32.into(), b"no request arrived in time");
            return Ok(None);
        }
    };
    let request = tokio::time::timeout_at(deadline, read_postcard::<T>(&mut recv))
        .await
        .ok();
    slot.release();
    Ok(Some((send, request)))
}

/// Read one message as [`write_postcard`] sends it; refuses one over 1 MiB.
pub async fn read_postcard<T: for<'de> Deserialize<'de>>(recv: &mut iroh::endpoint::RecvStream) -> Result<T> {
    let mut len = [0u8; 4];
    recv.read_exact(&mut len)
        .await
        .map_err(|e| Error::Network(NetworkProblem::CutShort { cause: e.to_string() }))?;
    let n = u32::from_be_bytes(len) as usize;
    if n > 1024 * 1024 {
        return Err(Error::Network(NetworkProblem::TooLarge));
    }
    let mut body = vec![0u8; n];
    recv.read_exact(&mut body)
        .await
        .map_err(|e| Error::Network(NetworkProblem::CutShort { cause: e.to_string() }))?;
    postcard::from_bytes(&body).map_err(|_| Error::Network(NetworkProblem::Malformed))
}
