//! Group `attach`: issue 6's target for moving an encrypted attachment between two devices, on
//! real loopback iroh endpoints.
//!
//! | benchmark                       | phr                                                    | baseline (same run)                                  |
//! |---------------------------------|--------------------------------------------------------|------------------------------------------------------|
//! | encrypted transfer, 256 MiB     | `Service::fetch_attachments` on a paired laptop: dial, the iroh-blobs request (access check on the phone), the BLAKE3-verified stream of the sealed blob into the laptop's blob store on disk | raw iroh: a fresh connection between two loopback endpoints, one `open_uni` stream, `write_all` of the same sealed bytes read from the phone's store, the receiver reading to the end into a file |
//! | seal 256 MiB (information)      | `attachment::attach`: keyed hash pass, seal, import into the store, entry written | `std::fs::copy` of the file |
//! | open 256 MiB (information)      | `BlobStore::open_to`: read, decrypt and check every chunk, size and hash, write, fsync, rename | `std::fs::copy` of the file |
//!
//! Target: the encrypted transfer at least 0.8x the raw stream's throughput. Each side runs
//! [`REPS`] times, alternating; the median counts.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use iroh::endpoint::Connection;
use iroh::protocol::{AcceptError, ProtocolHandler, Router};
use phr::attachment::{self, AttachRequest, Held};
use phr::entry::parse_fields;
use phr::identity::DeviceCert;
use phr::sync::net::{self, NetConfig, Service};
use phr::sync::{Replica, SessionOptions};
use phr::{Device, InitOptions, KeyPair, Section};

use crate::{Ctx, PASS, Row, cheap, median};

const SIZE: u64 = 256 * 1024 * 1024;
const REPS: usize = 3;
const TARGET: f64 = 0.8;
const RAW_ALPN: &[u8] = b"phr-bench/raw-copy";
const MIB: f64 = 1024.0 * 1024.0;

fn rate(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / MIB / d.as_secs_f64()
}

fn show(bytes: u64, d: Duration) -> String {
    format!("{:.0} MiB/s ({:.2} s)", rate(bytes, d), d.as_secs_f64())
}

/// A file of pseudo-random bytes (BLAKE3's output stream), written in pieces.
fn random_file(path: &Path, size: u64) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).expect("file"));
    let mut xof = blake3::Hasher::new().update(b"bench attachment").finalize_xof();
    let mut buf = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        xof.fill(&mut buf[..n]);
        out.write_all(&buf[..n]).expect("write");
        left -= n as u64;
    }
    out.flush().expect("flush");
}

/// Receives one uni stream to its end, into a file or (`dir: None`) nowhere, then reports how
/// many bytes it got.
#[derive(Debug)]
struct RawSink {
    dir: Option<PathBuf>,
    done: Mutex<Option<tokio::sync::oneshot::Sender<u64>>>,
}

impl ProtocolHandler for RawSink {
    async fn accept(&self, conn: Connection) -> Result<(), AcceptError> {
        let mut recv = conn.accept_uni().await.map_err(AcceptError::from_err)?;
        let path = self.dir.as_ref().map(|d| d.join("raw-copy"));
        let mut file = match &path {
            Some(p) => Some(std::fs::File::create(p).map_err(AcceptError::from_err)?),
            None => None,
        };
        let mut buf = vec![0u8; 1 << 20];
        let mut n = 0u64;
        while let Some(k) = recv.read(&mut buf).await.map_err(AcceptError::from_err)? {
            if let Some(f) = file.as_mut() {
                f.write_all(&buf[..k]).map_err(AcceptError::from_err)?;
            }
            n += k as u64;
        }
        drop(file);
        if let Some(p) = path {
            let _ = std::fs::remove_file(p);
        }
        if let Some(tx) = self.done.lock().expect("lock").take() {
            let _ = tx.send(n);
        }
        conn.closed().await;
        Ok(())
    }
}

/// One raw copy of `src` over a fresh connection, the receiver writing it to a file or (not
/// `to_file`) only reading it; returns the time until the receiver had it all.
async fn raw_copy(ctx: &Ctx, src: &Path, to_file: bool) -> Duration {
    let cfg = NetConfig::local();
    let dir = ctx.dir();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let sink = RawSink {
        dir: to_file.then(|| dir.path().to_path_buf()),
        done: Mutex::new(Some(tx)),
    };
    let server = Router::builder(net::bind(&KeyPair::generate(), &cfg).await.expect("bind"))
        .accept(RAW_ALPN, sink)
        .spawn();
    let client = net::bind(&KeyPair::generate(), &cfg).await.expect("bind");
    let t = Instant::now();
    let conn = net::connect(&client, server.endpoint().addr(), RAW_ALPN, &cfg)
        .await
        .expect("connect");
    let mut send = conn.open_uni().await.expect("stream");
    let mut file = std::fs::File::open(src).expect("source");
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        send.write_all(&buf[..n]).await.expect("send");
    }
    send.finish().expect("finish");
    let got = rx.await.expect("the receiver reports");
    let elapsed = t.elapsed();
    assert_eq!(got, std::fs::metadata(src).expect("size").len(), "raw copy complete");
    conn.close(0u32.into(), b"done");
    let _ = server.shutdown().await;
    client.close().await;
    elapsed
}

pub fn run(ctx: &Ctx) -> Vec<Row> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(run_async(ctx))
}

// One piece: one timed scenario read top to bottom (seal, transfer, open, each beside its
// baseline); its phases share the endpoints, the files and the timers.
async fn run_async(ctx: &Ctx) -> Vec<Row> {
    let mut rows = Vec::new();
    let files = ctx.dir();
    let src = files.path().join("evaluation.pdf");
    random_file(&src, SIZE);
    ctx.note(format!("made a {} MiB file", SIZE >> 20));

    let phone_dir = ctx.dir();
    let phone = Device::init(
        phone_dir.path(),
        PASS,
        InitOptions {
            name: "Mia Lopez".into(),
            dob: Some("2017-04-12".into()),
            device_name: "phone".into(),
            kdf: cheap(),
        },
    )
    .expect("init");
    let laptop_dir = ctx.dir();
    let key = KeyPair::generate();
    let cert = DeviceCert::issue(
        phone.root().expect("root"),
        key.public(),
        "laptop",
        chrono::Utc::now().timestamp(),
    );
    let statements = phone.access().statements().cloned().collect();
    let laptop = Device::create_member(laptop_dir.path(), PASS, key, cert, statements, cheap()).expect("member");
    let phone = Service::start(Replica::new(phone), NetConfig::local())
        .await
        .expect("phone");
    let laptop = Service::start(Replica::new(laptop), NetConfig::local())
        .await
        .expect("laptop");

    // Seal on the phone (information), beside a plain copy of the same file.
    let copy = files.path().join("copy.pdf");
    let t = Instant::now();
    std::fs::copy(&src, &copy).expect("copy");
    let plain_copy = t.elapsed();
    let _ = std::fs::remove_file(&copy);
    let phone_blobs = phone.blobs().await.expect("phone blobs");
    let fields = parse_fields(Section::Documents, &[("title".into(), "Full evaluation".into())]).expect("fields");
    let t = Instant::now();
    let done = attachment::attach(
        phone.replica(),
        &phone_blobs,
        AttachRequest {
            path: src.clone(),
            section: Section::Documents,
            to: None,
            fields,
            media_type: None,
            name: None,
        },
        Arc::new(|_| {}),
    )
    .await
    .expect("attach");
    let sealed = t.elapsed();
    let a = done.attachment;
    rows.push(Row::info(
        "seal 256 MiB (attach)",
        show(SIZE, sealed),
        "std::fs::copy of the file",
        show(SIZE, plain_copy),
        Some(rate(SIZE, sealed) / rate(SIZE, plain_copy)),
    ));

    laptop
        .sync_once(phone.addr(), SessionOptions::default())
        .await
        .expect("sync");
    let laptop_blobs = laptop.blobs().await.expect("laptop blobs");
    let sealed_src = phone_blobs.data_path(&a.blob);
    let blob_size = a.sealed_size();

    let mut phr_times = Vec::new();
    let mut raw_times = Vec::new();
    let mut raw_file_times = Vec::new();
    for rep in 0..REPS {
        let raw = raw_copy(ctx, &sealed_src, false).await;
        raw_times.push(raw);
        raw_file_times.push(raw_copy(ctx, &sealed_src, true).await);
        if laptop_blobs.held(&a.blob).await.expect("held") != Held::Missing {
            laptop_blobs.forget(&a.blob).await.expect("forget");
        }
        let t = Instant::now();
        let report = laptop
            .fetch_attachments(&[phone.addr()], &mut |_| {})
            .await
            .expect("fetch");
        let took = t.elapsed();
        assert_eq!(report.fetched, 1, "{report:?}");
        phr_times.push(took);
        ctx.note(format!(
            "rep {}: encrypted transfer {}, raw stream {}, raw stream into a file {}",
            rep + 1,
            show(blob_size, took),
            show(blob_size, raw),
            show(blob_size, raw_file_times[rep])
        ));
    }
    let (phr_t, raw_t, raw_file_t) = (median(&phr_times), median(&raw_times), median(&raw_file_times));
    let ratio = rate(blob_size, phr_t) / rate(blob_size, raw_t);
    rows.push(Row {
        bench: "encrypted transfer 256 MiB".into(),
        phr: show(blob_size, phr_t),
        baseline: "raw iroh uni stream of the same bytes, read to the end".into(),
        base: show(blob_size, raw_t),
        ratio: Some(ratio),
        target: format!("≥ {TARGET}x"),
        met: Some(ratio >= TARGET),
        limit: None,
    });
    rows.push(Row::info(
        "encrypted transfer 256 MiB",
        show(blob_size, phr_t),
        "the raw stream written to a file",
        show(blob_size, raw_file_t),
        Some(rate(blob_size, phr_t) / rate(blob_size, raw_file_t)),
    ));

    // Where opening spends its time: reading the blob out of the store alone.
    let t = Instant::now();
    let mut reader = laptop_blobs.fs().blobs().reader(phr::attachment::blob_hash(&a));
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = tokio::io::AsyncReadExt::read(&mut reader, &mut buf)
            .await
            .expect("read");
        if k == 0 {
            break;
        }
        n += k as u64;
    }
    ctx.note(format!(
        "reading the sealed blob out of the store alone: {}",
        show(n, t.elapsed())
    ));

    // Open on the laptop (information), beside a plain copy.
    let out = files.path().join("opened.pdf");
    let t = Instant::now();
    laptop_blobs
        .open_to(&a, &laptop.replica().record_id(), &out, Arc::new(|_| {}))
        .await
        .expect("open");
    let opened = t.elapsed();
    let _ = std::fs::remove_file(&out);
    rows.push(Row::info(
        "open 256 MiB (decrypt + verify)",
        show(SIZE, opened),
        "std::fs::copy of the file",
        show(SIZE, plain_copy),
        Some(rate(SIZE, opened) / rate(SIZE, plain_copy)),
    ));

    laptop.shutdown().await;
    phone.shutdown().await;
    drop((phone_blobs, laptop_blobs));
    rows
}
