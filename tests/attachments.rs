//! Encrypted attachments (issue 6) between devices on real iroh endpoints on 127.0.0.1: a large
//! file synced and opened byte for byte with memory bounded, served only to those who may read
//! the section, tamper detection, dedupe, garbage collection, resumed transfers; and the CLI.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[allow(dead_code)] // not every helper of the shared test harness is used here
mod common;

use common::Home;
use common::devices::{Phone, fast, fields, first_device, pair_new_device};
use phr::access::Statement;
use phr::attachment::{self, AttachRequest, Attached, BlobStore, Held};
use phr::capability::{Grant, Preset, Scope};
use phr::sync::blobs::fetch_blob;
use phr::sync::net::{NetConfig, Service, bind};
use phr::sync::{Replica, SessionOptions};
use phr::{Device, Error, KeyPair, Section};

const MIB: u64 = 1024 * 1024;

/// A file of `size` pseudo-random bytes (BLAKE3's output stream of `seed`), written in pieces.
fn random_file(dir: &Path, name: &str, size: u64, seed: &str) -> PathBuf {
    let path = dir.join(name);
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let mut xof = blake3::Hasher::new().update(seed.as_bytes()).finalize_xof();
    let mut buf = vec![0u8; MIB as usize];
    let mut left = size;
    while left > 0 {
        let n = left.min(MIB) as usize;
        xof.fill(&mut buf[..n]);
        out.write_all(&buf[..n]).unwrap();
        left -= n as u64;
    }
    out.flush().unwrap();
    path
}

/// BLAKE3 of a file, read in pieces (never the whole file in memory).
fn file_hash(path: &Path) -> blake3::Hash {
    let mut f = std::fs::File::open(path).unwrap();
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; MIB as usize];
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            return h.finalize();
        }
        h.update(&buf[..n]);
    }
}

/// A `VmRSS`/`VmHWM` line of this process, in bytes.
fn vm(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"));
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

fn quiet() -> Arc<dyn Fn(u64) + Send + Sync> {
    Arc::new(|_| {})
}

async fn attach(phone: &Phone, path: &Path, title: &str) -> Attached {
    let blobs = phone.service.blobs().await.unwrap();
    attachment::attach(
        phone.replica(),
        &blobs,
        AttachRequest {
            path: path.to_path_buf(),
            section: Section::Documents,
            to: None,
            fields: fields(Section::Documents, &[("title", title), ("kind", "assessment")]),
            media_type: None,
            name: None,
        },
        quiet(),
    )
    .await
    .unwrap()
}

async fn open_to(phone: &Phone, a: &attachment::Attachment, out: &Path) -> phr::Result<()> {
    let blobs = phone.service.blobs().await.unwrap();
    let record = phone.replica().record_id();
    blobs.open_to(a, &record, out, quiet()).await
}

/// Someone holding a grant of `scope` on `phone`'s record, serving on loopback.
async fn holder(phone: &Phone, label: &str, scope: Scope) -> Phone {
    let key = KeyPair::generate();
    let grant = Grant {
        audience: key.public(),
        label: label.into(),
        scope,
        delegate: false,
        not_before: chrono::Utc::now().timestamp() - 60,
        expires: None,
    };
    let cap = phone.replica().lock().grant(grant).unwrap();
    let statements: Vec<Statement> = phone.replica().lock().access().statements().cloned().collect();
    let dir = tempfile::tempdir().unwrap();
    let device = Device::create_holder(dir.path(), "pw", key, cap, statements, fast()).unwrap();
    let service = Service::start(Replica::new(device), NetConfig::local()).await.unwrap();
    Phone { dir, service }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_200_mb_attachment_syncs_and_opens_byte_identical_in_bounded_memory() {
    // Memory: the file is sealed, stored, sent, received and opened in chunks, so the process's
    // peak resident memory must grow by far less than the file. This is a bound on memory, not
    // a speed test (see docs/BENCHMARKS.md for throughput).
    let started = Instant::now();
    let scratch = tempfile::tempdir().unwrap();
    let size = 200 * MIB;
    let src = random_file(scratch.path(), "scan.pdf", size, "a 200 MB scan");
    let phone = first_device().await;
    let laptop = pair_new_device(&phone, "laptop").await;
    let rss_before = vm("VmRSS:");
    let t = Instant::now();
    let done = attach(&phone, &src, "Full evaluation, scanned").await;
    let sealed = t.elapsed();
    assert_eq!(done.attachment.size, size);
    assert_eq!(done.attachment.media_type, "application/pdf");

    let t = Instant::now();
    let report = laptop
        .service
        .sync_once(phone.service.addr(), SessionOptions::default())
        .await
        .unwrap();
    assert_eq!(report.rejected(), 0);
    let fetched = laptop
        .service
        .fetch_attachments(&[phone.service.addr()], &mut |_| {})
        .await
        .unwrap();
    let moved = t.elapsed();
    assert_eq!(fetched.fetched, 1, "{fetched:?}");
    assert_eq!(fetched.bytes, done.attachment.sealed_size());
    assert!(fetched.missing.is_empty(), "{fetched:?}");

    let on_laptop = attachment::find(laptop.replica().lock().record(), &done.id, None).unwrap();
    let out = scratch.path().join("opened.pdf");
    let t = Instant::now();
    open_to(&laptop, &on_laptop.attachment, &out).await.unwrap();
    let opened = t.elapsed();
    let peak = vm("VmHWM:");
    assert_eq!(file_hash(&out), file_hash(&src), "byte-identical after the round trip");
    let growth = peak.saturating_sub(rss_before);
    eprintln!(
        "200 MiB: sealed {:.1} s, synced+fetched {:.1} s, opened {:.1} s; peak RSS grew {:.1} MiB; test {:.1} s",
        sealed.as_secs_f64(),
        moved.as_secs_f64(),
        opened.as_secs_f64(),
        growth as f64 / MIB as f64,
        started.elapsed().as_secs_f64()
    );
    assert!(
        growth < 64 * MIB,
        "peak memory grew by {} MiB for a {} MiB file",
        growth / MIB,
        size / MIB
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caregiver_without_documents_never_gets_the_blob_and_a_direct_fetch_is_refused() {
    let scratch = tempfile::tempdir().unwrap();
    let src = random_file(scratch.path(), "iep.pdf", 300 * 1024, "an IEP");
    let phone = first_device().await;
    let done = attach(&phone, &src, "IEP 2024").await;

    let mut scope = Preset::Caregiver.scope();
    scope.remove(&Section::Documents);
    let carer = holder(&phone, "Grandma", scope).await;
    carer
        .service
        .sync_once(phone.service.addr(), SessionOptions::default())
        .await
        .unwrap();
    assert_eq!(carer.count(Section::Documents), 0, "documents never reach her");
    let report = carer
        .service
        .fetch_attachments(&[phone.service.addr()], &mut |_| {})
        .await
        .unwrap();
    assert_eq!((report.fetched, report.bytes), (0, 0), "{report:?}");

    // Even knowing the hash, asking for it directly is refused, and nothing of it arrives.
    let carer_blobs = carer.service.blobs().await.unwrap();
    let err = fetch_blob(
        carer.service.endpoint(),
        &NetConfig::local(),
        phone.service.addr(),
        &carer_blobs,
        &done.attachment.blob,
        None,
        &mut |_| {},
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("refused"), "{err}");
    assert_eq!(carer_blobs.held(&done.attachment.blob).await.unwrap(), Held::Missing);

    // A key that is no member at all is turned away at the connection.
    let stranger = KeyPair::generate();
    let endpoint = bind(&stranger, &NetConfig::local()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let stranger_blobs = BlobStore::open(dir.path()).await.unwrap();
    let err = fetch_blob(
        &endpoint,
        &NetConfig::local(),
        phone.service.addr(),
        &stranger_blobs,
        &done.attachment.blob,
        None,
        &mut |_| {},
    )
    .await
    .unwrap_err();
    assert_eq!(
        stranger_blobs.held(&done.attachment.blob).await.unwrap(),
        Held::Missing,
        "{err}"
    );
    endpoint.close().await;

    // Whoever may read documents (a school, here) does get it, and it opens.
    let school = holder(&phone, "Lincoln IEP team", Preset::School.scope()).await;
    school
        .service
        .sync_once(phone.service.addr(), SessionOptions::default())
        .await
        .unwrap();
    let report = school
        .service
        .fetch_attachments(&[phone.service.addr()], &mut |_| {})
        .await
        .unwrap();
    assert_eq!(report.fetched, 1, "{report:?}");
    let out = scratch.path().join("school-copy.pdf");
    open_to(&school, &done.attachment, &out).await.unwrap();
    assert_eq!(file_hash(&out), file_hash(&src));

    // The phone's audit log says who received the attachment, and nobody else.
    let sent: Vec<String> = phone
        .replica()
        .lock()
        .record()
        .list(Section::Audit)
        .unwrap()
        .into_iter()
        .filter(|e| e.fields.get("kind").and_then(|k| k.as_str()) == Some("attachment"))
        .map(|e| e.fields["detail"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(
        sent[0].contains("IEP 2024") && sent[0].contains("Lincoln IEP team"),
        "{sent:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_byte_in_a_stored_blob_is_detected_and_nothing_is_written() {
    let scratch = tempfile::tempdir().unwrap();
    let src = random_file(scratch.path(), "card.jpg", 200 * 1024, "an insurance card");
    let phone = first_device().await;
    let done = attach(&phone, &src, "Insurance card").await;
    let laptop = pair_new_device(&phone, "laptop").await;
    laptop
        .service
        .fetch_attachments(&[phone.service.addr()], &mut |_| {})
        .await
        .unwrap();

    let blobs = phone.service.blobs().await.unwrap();
    let data = blobs.data_path(&done.attachment.blob);
    let mut bytes = std::fs::read(&data).unwrap();
    bytes[150_000] ^= 0x01;
    std::fs::write(&data, &bytes).unwrap();

    let out = scratch.path().join("card-copy.jpg");
    let err = open_to(&phone, &done.attachment, &out).await.unwrap_err();
    assert!(matches!(err, Error::AttachmentDamaged(_)), "{err}");
    assert!(err.to_string().contains("damaged"), "{err}");
    assert!(!out.exists(), "no partial output");
    let leftovers: Vec<_> = std::fs::read_dir(scratch.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("card-copy"))
        .collect();
    assert!(leftovers.is_empty(), "no temporary file left: {leftovers:?}");

    // Dropping the damaged copy lets the next fetch bring an intact one from the laptop.
    blobs.forget(&done.attachment.blob).await.unwrap();
    assert_eq!(blobs.held(&done.attachment.blob).await.unwrap(), Held::Missing);
    phone
        .service
        .fetch_attachments(&[laptop.service.addr()], &mut |_| {})
        .await
        .unwrap();
    open_to(&phone, &done.attachment, &out).await.unwrap();
    assert_eq!(file_hash(&out), file_hash(&src));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_file_attached_twice_is_stored_once() {
    let scratch = tempfile::tempdir().unwrap();
    let src = random_file(scratch.path(), "report.pdf", 100 * 1024, "a report");
    let phone = first_device().await;
    let first = attach(&phone, &src, "Report").await;
    let second = attach(&phone, &src, "Report, again").await;
    assert!(!first.reused);
    assert!(second.reused, "an identical file reuses the stored blob");
    assert_ne!(first.id, second.id, "two entries");
    assert_eq!(first.attachment.blob, second.attachment.blob);
    assert_eq!(first.attachment.key, second.attachment.key);
    let blobs = phone.service.blobs().await.unwrap();
    assert_eq!(blobs.list().await.unwrap(), vec![first.attachment.blob], "stored once");
    assert_eq!(phone.count(Section::Documents), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_removes_a_replaced_attachment_and_keeps_referenced_ones() {
    let scratch = tempfile::tempdir().unwrap();
    let a = random_file(scratch.path(), "a.pdf", 64 * 1024, "a");
    let b = random_file(scratch.path(), "b.pdf", 64 * 1024, "b");
    let c = random_file(scratch.path(), "c.pdf", 64 * 1024, "c");
    let phone = first_device().await;
    let first = attach(&phone, &a, "Evaluation").await;
    let other = attach(&phone, &b, "Plan").await;
    // Re-attach a corrected scan to the first entry: its old file is no longer referenced.
    let blobs = phone.service.blobs().await.unwrap();
    let replaced = attachment::attach(
        phone.replica(),
        &blobs,
        AttachRequest {
            path: c.clone(),
            section: Section::Documents,
            to: Some(first.id[..6].to_string()),
            fields: Default::default(),
            media_type: Some("application/pdf".into()),
            name: None,
        },
        quiet(),
    )
    .await
    .unwrap();
    assert_eq!(replaced.id, first.id);
    assert_eq!(blobs.list().await.unwrap().len(), 3);

    let keep = attachment::referenced_blobs(phone.replica().lock().record()).unwrap();
    let report = blobs.gc(&keep).await.unwrap();
    assert_eq!((report.removed, report.kept), (1, 2), "{report:?}");
    assert_eq!(blobs.held(&first.attachment.blob).await.unwrap(), Held::Missing);
    for (att, src) in [(&other.attachment, &b), (&replaced.attachment, &c)] {
        let out = scratch.path().join(format!("{}.out", att.short()));
        open_to(&phone, att, &out).await.unwrap();
        assert_eq!(file_hash(&out), file_hash(src));
    }
    let again = blobs.gc(&keep).await.unwrap();
    assert_eq!((again.removed, again.kept), (0, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_transfer_resumes_where_it_stopped() {
    let scratch = tempfile::tempdir().unwrap();
    let src = random_file(scratch.path(), "video.mp4", 48 * MIB, "a therapy video");
    let phone = first_device().await;
    let done = attach(&phone, &src, "Session video").await;
    let laptop = pair_new_device(&phone, "laptop").await;
    let total = done.attachment.sealed_size();
    let blobs = laptop.service.blobs().await.unwrap();

    // Cut the transfer once a quarter has arrived.
    let received = Arc::new(AtomicU64::new(0));
    let cut = Arc::new(tokio::sync::Notify::new());
    let (r, c) = (received.clone(), cut.clone());
    let mut watch = move |n: u64| {
        r.store(n, Ordering::SeqCst);
        if n >= total / 4 {
            c.notify_one();
        }
    };
    let cfg = NetConfig::local();
    let first = fetch_blob(
        laptop.service.endpoint(),
        &cfg,
        phone.service.addr(),
        &blobs,
        &done.attachment.blob,
        None,
        &mut watch,
    );
    tokio::select! {
        r = first => panic!("the transfer finished before it could be cut: {r:?}"),
        _ = cut.notified() => {}
    }
    let before = received.load(Ordering::SeqCst);
    // Let the store settle what it received before the cut.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let Held::Partial(kept) = blobs.held(&done.attachment.blob).await.unwrap() else {
        panic!("the cut transfer left nothing behind");
    };
    assert!(kept > 0 && kept < total, "kept {kept} of {total}");

    let second = fetch_blob(
        laptop.service.endpoint(),
        &NetConfig::local(),
        phone.service.addr(),
        &blobs,
        &done.attachment.blob,
        Some(total),
        &mut |_| {},
    )
    .await
    .unwrap();
    eprintln!(
        "cut after {} MiB received ({} MiB kept); the resumed transfer sent {} MiB of {} MiB",
        before / MIB,
        kept / MIB,
        second.bytes / MIB,
        total / MIB
    );
    assert!(
        second.bytes <= total - kept + 256 * 1024,
        "resumed: {} bytes sent again, {kept} were already here",
        second.bytes
    );
    assert!(second.bytes < total, "not restarted from zero");
    let out = scratch.path().join("video-copy.mp4");
    open_to(&laptop, &done.attachment, &out).await.unwrap();
    assert_eq!(file_hash(&out), file_hash(&src));
}

#[test]
fn the_cli_attaches_opens_dedupes_and_refuses_a_tampered_file() {
    let home = Home::init("Mia Lopez");
    let scratch = tempfile::tempdir().unwrap();
    let src = random_file(scratch.path(), "IEP 2024.pdf", 120 * 1024, "an IEP for the CLI");
    let src_arg = src.to_str().unwrap();
    let added = home.json(["attach", src_arg, "--title", "IEP 2024", "--kind", "iep", "--json"]);
    assert_eq!(added["section"], "documents");
    assert_eq!(added["media_type"], "application/pdf");
    assert_eq!(added["reused"], false);
    let id = added["id"].as_str().unwrap().to_string();
    let blob = added["blob"].as_str().unwrap().to_string();
    let entry = home.entry("documents", &id);
    assert_eq!(entry["fields"]["title"], "IEP 2024", "{entry}");

    let out = scratch.path().join("copy.pdf");
    let opened = home.ok(["open", &id[..6], "--out", out.to_str().unwrap()]);
    assert!(opened.stdout.contains("checked"), "{}", opened.stdout);
    assert_eq!(file_hash(&out), file_hash(&src));

    let again = home.json(["attach", src_arg, "--json"]);
    assert_eq!(again["reused"], true, "{again}");
    assert_eq!(again["blob"], blob.as_str());
    let list = home.json(["attachments", "list", "--json"]);
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    let gc = home.ok(["attachments", "gc"]);
    assert!(gc.stdout.contains("removed 0"), "{}", gc.stdout);

    let data = home.path().join("blobs/data").join(format!("{blob}.data"));
    let mut bytes = std::fs::read(&data).unwrap();
    bytes[70_000] ^= 0x80;
    std::fs::write(&data, &bytes).unwrap();
    let out2 = scratch.path().join("copy2.pdf");
    let err = home.phr(["open", &id, "--out", out2.to_str().unwrap()]).refused();
    assert!(err.contains("damaged"), "{err}");
    assert!(!out2.exists(), "nothing written");

    let notes = home
        .phr(["attach", src_arg, "--section", "notes", "--to", &id])
        .refused();
    assert!(notes.contains("notes"), "{notes}");
}
