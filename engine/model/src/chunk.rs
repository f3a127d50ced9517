//! Automerge chunks from outside (a peer's batch, a row of the store file): how far they would
//! expand, measured before Automerge decodes them.
//!
//! automerge 0.12 expands some run-length-encoded columns into vectors when it parses a bundle
//! (and an op column into ops when a change is decoded), and it inflates DEFLATE-compressed
//! columns and changes without a limit. A run header is a few bytes that can say "this value,
//! 2^50 times", so a ~1 KB bundle made it allocate until the process died (docs/FUZZING.md).
//! [`check`] walks the chunk layout (the format of <https://automerge.org/automerge-binary-format-spec/>)
//! and counts, without expanding anything, the values every column holds and the bytes every
//! compressed part inflates to, and refuses a chunk that would expand far beyond its own size,
//! or whose columns do not read to their end (hexane loops forever on some of those). The
//! bounds are ratios with room: honest chunks stay more than 20x below them (see the tests), so
//! what a peer can make phr allocate is a constant factor of what it sends.
//!
//! What the walk cannot read of the layout (a truncated header, an unknown chunk type) it
//! leaves to Automerge, whose parser refuses it before expanding anything.

use std::io::Read;

/// Values any one column may hold: this many, plus [`ROWS_PER_BYTE`] per byte of its chunk.
const MIN_ROWS: u64 = 1 << 16;
/// Values a column may hold per byte of the chunk as received (compressed, if it was).
const ROWS_PER_BYTE: u64 = 16;
/// Bytes a chunk's compressed parts may inflate to: this many, plus [`INFLATE_PER_BYTE`] per byte.
const MIN_INFLATED: u64 = 1 << 20;
/// Inflated bytes per byte of the chunk as received.
const INFLATE_PER_BYTE: u64 = 64;

const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
const DOCUMENT: u8 = 0;
const CHANGE: u8 = 1;
const COMPRESSED_CHANGE: u8 = 2;
const BUNDLE: u8 = 3;

/// Refuse bytes for `AutoCommit::load` or `Change::from_bytes` (a chunk, or a sequence of
/// them) that would expand beyond the bounds above; `Err` says which part and how far.
pub fn check(bytes: &[u8]) -> Result<(), String> {
    let mut rest = bytes;
    while !rest.is_empty() {
        let mut r = Reader(rest);
        let Some((kind, len, _)) = header(&mut r) else {
            return Ok(());
        };
        let Some(body) = r.take(usize::try_from(len).unwrap_or(usize::MAX)) else {
            return Ok(());
        };
        rest = r.0;
        let wire = body.len() as u64;
        match kind {
            DOCUMENT => document(body, wire, None)?,
            CHANGE => change(body, wire)?,
            COMPRESSED_CHANGE => drop(compressed_change(body)?),
            BUNDLE => bundle(body, wire)?,
            _ => return Ok(()),
        }
    }
    Ok(())
}

/// [`check`] for the bytes of one change (`Change::from_bytes`). A compressed change comes back
/// inflated, as the uncompressed change chunk Automerge would make of it (same bytes, so the
/// same hash), so that Automerge does not inflate it a second time.
pub fn check_change(bytes: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let mut r = Reader(bytes);
    let Some((COMPRESSED_CHANGE, len, _)) = header(&mut r) else {
        return check(bytes).map(|()| None);
    };
    let whole = usize::try_from(len).is_ok_and(|len| len == r.0.len());
    if !whole {
        return check(bytes).map(|()| None);
    }
    let inflated = compressed_change(r.0)?;
    let mut chunk = Vec::with_capacity(inflated.len() + 20);
    chunk.extend_from_slice(&bytes[..8]); // magic and checksum, as Automerge keeps them
    chunk.push(CHANGE);
    uleb_to(&mut chunk, inflated.len() as u64);
    chunk.extend_from_slice(&inflated);
    Ok(Some(chunk))
}

/// The body of a compressed change, inflated within bounds and checked as a change.
fn compressed_change(body: &[u8]) -> Result<Vec<u8>, String> {
    let wire = body.len() as u64;
    let inflated =
        inflate(body, inflate_limit(wire)).map_err(|e| format!("a compressed change of {wire} bytes {e}"))?;
    change(&inflated, wire)?;
    Ok(inflated)
}

/// Refuse bytes for `automerge::Bundle::try_from` that would expand beyond the bounds above.
///
/// That parser reads the body after the chunk header as a bundle to the end of the bytes,
/// whatever the header's type and length say, so this walks it the same way.
pub fn check_bundle(bytes: &[u8]) -> Result<(), String> {
    let mut r = Reader(bytes);
    match header(&mut r) {
        Some((_, _, tail)) => bundle(tail, tail.len() as u64),
        None => Ok(()),
    }
}

/// The largest figures [`check`] found in a chunk: for the tests that keep the bounds honest.
#[cfg(test)]
fn measure(bytes: &[u8]) -> Measured {
    MEASURED.with(|m| *m.borrow_mut() = Measured::default());
    let _ = check(bytes);
    MEASURED.with(|m| *m.borrow())
}

#[cfg(test)]
#[derive(Debug, Default, Clone, Copy)]
struct Measured {
    /// Most values in one column.
    rows: u64,
    /// Bytes of the chunk those were counted against.
    chunk: u64,
    /// Bytes its compressed parts inflated to.
    inflated: u64,
}

#[cfg(test)]
thread_local! {
    static MEASURED: std::cell::RefCell<Measured> = std::cell::RefCell::new(Measured::default());
}

fn inflate_limit(wire: u64) -> u64 {
    MIN_INFLATED.saturating_add(INFLATE_PER_BYTE.saturating_mul(wire))
}

fn row_limit(size: u64) -> u64 {
    MIN_ROWS.saturating_add(ROWS_PER_BYTE.saturating_mul(size))
}

/// Inflate raw DEFLATE data, giving up (with the limit) past `limit` bytes.
fn inflate(data: &[u8], limit: u64) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut decoder = flate2::read::DeflateDecoder::new(data).take(limit.saturating_add(1));
    decoder
        .read_to_end(&mut out)
        .map_err(|e| format!("does not inflate ({e})"))?;
    if out.len() as u64 > limit {
        Err(format!("inflates beyond {limit} bytes"))
    } else {
        Ok(out)
    }
}

fn uleb_to(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// [`check`] for a saved document (`AutoCommit::load`). A document with compressed columns
/// comes back with them inflated, which Automerge loads without inflating them again.
pub fn check_document(bytes: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let mut r = Reader(bytes);
    let Some((DOCUMENT, len, body)) = header(&mut r) else {
        return check(bytes).map(|()| None);
    };
    if usize::try_from(len).ok() != Some(body.len()) {
        return check(bytes).map(|()| None);
    }
    let mut plain = Plain::default();
    document(body, len, Some(&mut plain))?;
    if !plain.any_compressed {
        return Ok(None);
    }
    let mut inner = Vec::with_capacity(body.len() + plain.data.len());
    inner.extend_from_slice(&body[..plain.prefix]);
    for set in &plain.sets {
        uleb_to(&mut inner, set.len() as u64);
        for &(spec, len) in set {
            uleb_to(&mut inner, u64::from(spec & !0b1000));
            uleb_to(&mut inner, len);
        }
    }
    inner.extend_from_slice(&plain.data);
    inner.extend_from_slice(&body[plain.suffix..]);
    // Automerge checks a document's checksum: the first bytes of SHA-256 over type, length and
    // body, which for the inflated body are new.
    let mut head = vec![DOCUMENT];
    uleb_to(&mut head, inner.len() as u64);
    let hash = {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(&head);
        h.update(&inner);
        h.finalize()
    };
    let mut chunk = Vec::with_capacity(inner.len() + 20);
    chunk.extend_from_slice(&MAGIC);
    chunk.extend_from_slice(&hash[..4]);
    chunk.extend_from_slice(&head);
    chunk.extend_from_slice(&inner);
    Ok(Some(chunk))
}

/// A document's columns as read by [`document`], inflated: what [`check_document`] rebuilds.
#[derive(Default)]
struct Plain {
    any_compressed: bool,
    /// End of the actors and heads.
    prefix: usize,
    /// Start of what follows the column data (the heads' indexes).
    suffix: usize,
    /// The change columns and the op columns, with their inflated lengths.
    sets: Vec<Vec<Column>>,
    /// Every column's inflated data, in order.
    data: Vec<u8>,
}

/// `magic, checksum, type, uLEB length`, leaving `r` at the body: the chunk's type, its
/// length, and every byte after the header.
fn header<'a>(r: &mut Reader<'a>) -> Option<(u8, u64, &'a [u8])> {
    if r.take(4)? != MAGIC {
        return None;
    }
    r.take(4)?;
    let kind = r.take(1)?[0];
    let len = r.uleb()?;
    Some((kind, len, r.0))
}

fn document(body: &[u8], wire: u64, mut plain: Option<&mut Plain>) -> Result<(), String> {
    let mut r = Reader(body);
    let Some(()) = r.actors().and_then(|_| r.hashes()) else {
        return Ok(());
    };
    let prefix = body.len() - r.0.len();
    let (Some(changes), Some(ops)) = (r.columns(), r.columns()) else {
        return Ok(());
    };
    let mut budget = Inflation::new(wire);
    for cols in [changes, ops] {
        let Some(data) = r.take(total(&cols)) else {
            return Ok(());
        };
        let lens = columns(
            &cols,
            data,
            wire,
            &mut budget,
            "a document",
            plain.as_deref_mut().map(|p| &mut p.data),
        )?;
        if let Some(p) = plain.as_deref_mut() {
            p.any_compressed |= cols.iter().any(|(spec, _)| spec & 0b1000 != 0);
            p.sets
                .push(cols.iter().zip(lens).map(|(&(spec, _), len)| (spec, len)).collect());
        }
    }
    if let Some(p) = plain {
        p.prefix = prefix;
        p.suffix = body.len() - r.0.len();
    }
    Ok(())
}

fn change(body: &[u8], wire: u64) -> Result<(), String> {
    let mut r = Reader(body);
    let layout = (|| {
        r.hashes()?;
        r.bytes()?; // actor
        r.uleb()?; // seq
        r.uleb()?; // start op
        r.uleb()?; // time
        r.bytes()?; // message
        r.actors()?;
        r.columns()
    })();
    let Some(cols) = layout else {
        return Ok(());
    };
    let Some(data) = r.take(total(&cols)) else {
        return Ok(());
    };
    columns(&cols, data, wire, &mut Inflation::new(wire), "a change", None).map(|_| ())
}

fn bundle(body: &[u8], wire: u64) -> Result<(), String> {
    let mut r = Reader(body);
    let Some(()) = r.hashes().and_then(|_| r.actors()) else {
        return Ok(());
    };
    let mut budget = Inflation::new(wire);
    for _ in 0..2 {
        let Some(cols) = r.columns() else {
            return Ok(());
        };
        let Some(data) = r.take(total(&cols)) else {
            return Ok(());
        };
        columns(&cols, data, wire, &mut budget, "a bundle", None)?;
    }
    Ok(())
}

/// What a chunk's compressed columns may still inflate to.
struct Inflation {
    wire: u64,
    left: u64,
    inflated: u64,
}

impl Inflation {
    fn new(wire: u64) -> Self {
        Inflation {
            wire,
            left: inflate_limit(wire),
            inflated: 0,
        }
    }
}

/// A column's spec (`id << 4 | deflate << 3 | type`) and data length.
type Column = (u32, u64);

fn total(cols: &[Column]) -> usize {
    cols.iter().fold(0usize, |sum, (_, len)| {
        sum.saturating_add(usize::try_from(*len).unwrap_or(usize::MAX))
    })
}

/// Count every column's values, inflating compressed ones within `budget`; with `keep`, append
/// each column's (inflated) data to it. Returns each column's inflated length.
fn columns(
    cols: &[Column],
    mut data: &[u8],
    size: u64,
    budget: &mut Inflation,
    what: &str,
    mut keep: Option<&mut Vec<u8>>,
) -> Result<Vec<u64>, String> {
    let mut lens = Vec::with_capacity(cols.len());
    for &(spec, len) in cols {
        let len = usize::try_from(len).unwrap_or(usize::MAX).min(data.len());
        let (raw, rest) = data.split_at(len);
        data = rest;
        let inflated;
        let bytes = if spec & 0b1000 != 0 {
            inflated = inflate(raw, budget.left).map_err(|e| {
                format!(
                    "{what} of {} bytes has a compressed column that {e} (at most {} in all)",
                    budget.wire,
                    inflate_limit(budget.wire)
                )
            })?;
            budget.left -= inflated.len() as u64;
            budget.inflated += inflated.len() as u64;
            &inflated[..]
        } else {
            raw
        };
        let Some(rows) = rows(spec & 0b111, bytes) else {
            return Err(format!(
                "{what} has a malformed column ({} of type {})",
                spec >> 4,
                spec & 0b111
            ));
        };
        #[cfg(test)]
        MEASURED.with(|m| {
            let mut m = m.borrow_mut();
            if rows >= m.rows {
                *m = Measured {
                    rows,
                    chunk: size,
                    inflated: budget.inflated,
                };
            }
        });
        if rows > row_limit(size) {
            return Err(format!(
                "{what} of {size} bytes has a column of {rows} values (at most {} are accepted)",
                row_limit(size)
            ));
        }
        lens.push(bytes.len() as u64);
        if let Some(keep) = keep.as_deref_mut() {
            keep.extend_from_slice(bytes);
        }
    }
    Ok(lens)
}

/// How many values a column of `kind` holds, counting runs without expanding them; `None` if
/// the column does not read to its end. (hexane, which decodes columns for automerge 0.12,
/// loops forever on some truncated runs instead of stopping, so a malformed column is refused
/// here rather than left to it.)
fn rows(kind: u32, data: &[u8]) -> Option<u64> {
    const BOOLEAN: u32 = 4;
    const STRING: u32 = 5;
    const DELTA: u32 = 3;
    const VALUE: u32 = 7;
    let mut r = Reader(data);
    let mut n: u64 = 0;
    match kind {
        // Raw value bytes: as many as the column is long.
        VALUE => return Some(0),
        // Runs of alternately false and true values.
        BOOLEAN => {
            while !r.0.is_empty() {
                n = n.saturating_add(r.uleb()?);
            }
        }
        // Runs of group sizes, actor indexes, integers, deltas, value metadata or strings.
        _ => {
            let value = |r: &mut Reader| match kind {
                STRING => r.bytes().map(|_| ()),
                DELTA => r.sleb().map(|_| ()),
                _ => r.uleb().map(|_| ()),
            };
            while !r.0.is_empty() {
                let count = r.sleb()?;
                let run = match count {
                    // A repeat: one value, `count` times.
                    1.. => {
                        value(&mut r)?;
                        count.unsigned_abs()
                    }
                    // A literal: `-count` values, each written out (so bounded by the bytes).
                    ..0 => {
                        for _ in 0..count.unsigned_abs() {
                            value(&mut r)?;
                        }
                        count.unsigned_abs()
                    }
                    // Nulls: a count of them.
                    0 => r.uleb()?,
                };
                n = n.saturating_add(run);
            }
        }
    }
    Some(n)
}

/// A cursor over bytes; every read is `None` past the end.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.0.len() {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    /// An unsigned LEB128 number, refused where the `leb128` crate (Automerge's) refuses it.
    fn uleb(&mut self) -> Option<u64> {
        let mut value: u64 = 0;
        let mut shift = 0;
        loop {
            let byte = self.take(1)?[0];
            if shift == 63 && byte > 1 {
                return None;
            }
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(value);
            }
            shift += 7;
        }
    }

    /// A signed LEB128 number, refused where the `leb128` crate refuses it.
    fn sleb(&mut self) -> Option<i64> {
        let mut value: i64 = 0;
        let mut shift = 0;
        loop {
            let byte = self.take(1)?[0];
            if shift == 63 && byte != 0x00 && byte != 0x7f {
                return None;
            }
            value |= i64::from(byte & 0x7f) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                if shift < 64 && byte & 0x40 != 0 {
                    value |= -1 << shift;
                }
                return Some(value);
            }
        }
    }

    /// A uLEB128 length and that many bytes.
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.uleb()?).ok()?;
        self.take(n)
    }

    /// A counted list of length-prefixed actor ids.
    fn actors(&mut self) -> Option<()> {
        let n = self.uleb()?;
        for _ in 0..n {
            self.bytes()?;
        }
        Some(())
    }

    /// A counted list of 32-byte change hashes.
    fn hashes(&mut self) -> Option<()> {
        let n = usize::try_from(self.uleb()?).ok()?;
        self.take(n.checked_mul(32)?).map(|_| ())
    }

    /// Column metadata: a count, then (spec, data length) pairs.
    fn columns(&mut self) -> Option<Vec<Column>> {
        let n = self.uleb()?;
        let mut out = Vec::new();
        for _ in 0..n {
            let spec = u32::try_from(self.uleb()?).ok()?;
            out.push((spec, self.uleb()?));
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;
    use automerge::{AutoCommit, ObjType, ROOT};

    /// A section as phr writes it: many map entries of several fields, a list appended to.
    fn honest_doc(entries: usize) -> AutoCommit {
        let mut doc = AutoCommit::new();
        for i in 0..entries {
            let entry = doc
                .put_object(ROOT, format!("entry-{i:06}"), ObjType::Map)
                .expect("put");
            doc.put(&entry, "date", format!("2026-{:02}-{:02}", 1 + i % 12, 1 + i % 28))
                .expect("put");
            doc.put(
                &entry,
                "text",
                format!("Worked on /s/ in initial position, trial {i}; 8 of 10 correct."),
            )
            .expect("put");
            doc.put(&entry, "minutes", (30 + i % 30) as i64).expect("put");
            doc.put(&entry, "done", i % 2 == 0).expect("put");
            let progress = doc.put_object(&entry, "progress", ObjType::List).expect("list");
            for k in 0..3 {
                doc.insert(&progress, k, format!("step {k}")).expect("insert");
            }
            if i % 10 == 0 {
                doc.commit();
            }
        }
        doc.commit();
        doc
    }

    fn assert_well_within(what: &str, bytes: &[u8]) {
        assert_eq!(check(bytes), Ok(()), "{what} is refused");
        let m = measure(bytes);
        let limit = row_limit(m.chunk);
        let inflate = inflate_limit(bytes.len() as u64);
        // A wide margin: honest chunks must never come near the bounds. (This text repeats
        // more than real notes do, so it inflates more.)
        assert!(
            m.rows.saturating_mul(20) < limit && m.inflated.saturating_mul(4) < inflate,
            "{what} of {} bytes: {m:?} against limits of {limit} values and {inflate} bytes",
            bytes.len()
        );
    }

    #[test]
    fn honest_snapshots_bundles_and_changes_are_far_within_the_bounds() {
        for entries in [1, 50, 5_000] {
            let mut doc = honest_doc(entries);
            assert_well_within(&format!("a snapshot of {entries} entries"), &doc.save());
            // A snapshot handed back inflated loads to the same document.
            let saved = doc.save();
            if let Some(plain) = check_document(&saved).expect("an honest snapshot") {
                let mut again = AutoCommit::load(&plain).expect("the inflated snapshot loads");
                assert_eq!(again.get_heads(), doc.get_heads());
                assert_eq!(again.save(), saved);
            }
            let changes = doc.get_changes(&[]);
            let bundle = doc.bundle(changes.iter().map(|c| c.hash())).expect("bundle");
            assert_eq!(check_bundle(bundle.bytes()), Ok(()), "an honest bundle is refused");
            assert_well_within(&format!("a bundle of {entries} entries"), bundle.bytes());
            for mut c in changes {
                assert_well_within("a change", &c.bytes());
                assert_well_within("an uncompressed change", c.raw_bytes());
                // A compressed change handed back inflated decodes to the same change.
                if let Some(inflated) = check_change(&c.bytes()).expect("an honest change") {
                    let again = automerge::Change::from_bytes(inflated).expect("the inflated change decodes");
                    assert_eq!(again.hash(), c.hash());
                    assert_eq!(again.raw_bytes(), c.raw_bytes());
                }
                assert_eq!(check_change(c.raw_bytes()), Ok(None));
            }
        }
    }

    /// The stored change rows libFuzzer found (fuzz/known/): two bundles whose runs claim
    /// billions of values, one whose boolean column ends inside a number (hexane looped on it
    /// forever). The rest of fuzz/known/ goes through the fuzz targets in tests/fuzz_targets.rs.
    #[test]
    fn a_run_claiming_billions_of_values_or_a_cut_column_is_refused() {
        let rows = [
            include_bytes!("../../../fuzz/known/stored_value-bundle-oom").as_slice(),
            include_bytes!("../../../fuzz/known/stored_value-bundle-timeout"),
            include_bytes!("../../../fuzz/known/stored_value-bundle-timeout-2"),
            // Its header says "compressed change"; Automerge parses it as a bundle all the same.
            include_bytes!("../../../fuzz/known/stored_value-bundle-oom-2"),
        ];
        for input in rows {
            // The target's bytes: "a change row", the section, the row kind, then the bundle.
            let err = check_bundle(&input[3..]).expect_err("the kept bundle is refused");
            assert!(err.contains("values") || err.contains("malformed column"), "{err}");
        }
    }

    #[test]
    fn a_deflate_bomb_is_refused() {
        // 64 MiB of zeros compresses to ~64 KiB: far past the inflation bound.
        let zeros = vec![0u8; 64 << 20];
        let mut packed = Vec::new();
        flate2::read::DeflateEncoder::new(&zeros[..], flate2::Compression::best())
            .read_to_end(&mut packed)
            .expect("deflate");
        let mut chunk = MAGIC.to_vec();
        chunk.extend([0; 4]);
        chunk.push(COMPRESSED_CHANGE);
        let mut len = packed.len() as u64;
        while len >= 0x80 {
            chunk.push((len as u8) | 0x80);
            len >>= 7;
        }
        chunk.push(len as u8);
        chunk.extend(&packed);
        for err in [check(&chunk), check_change(&chunk).map(|_| ())] {
            let err = err.expect_err("a bomb is refused");
            assert!(err.contains("inflates beyond"), "{err}");
        }
    }

    #[test]
    fn what_the_walk_cannot_read_is_left_to_automerge() {
        assert_eq!(check_bundle(b""), Ok(()));
        assert_eq!(check(b""), Ok(()));
        assert_eq!(check(b"not a chunk"), Ok(()));
        assert_eq!(check(&[0x85, 0x6f, 0x4a, 0x83, 0, 0, 0, 0, 3, 0xff]), Ok(()));
    }
}
