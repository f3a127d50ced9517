//! Group `fhir`: issue 6's target for `phr import --fhir`.
//!
//! The largest Synthea sample bundle (../shared/fhir-samples, Apache-2.0) is imported into a
//! fresh record, start to finish as the command does it once the file is read: parse, map every
//! resource, compare with the record, write every entry and the audit event, one durable commit.
//! Measured beside parsing the same text into a `serde_json::Value`, in the same run:
//!
//! | benchmark                       | phr                                                        | baseline (same run)              |
//! |---------------------------------|------------------------------------------------------------|----------------------------------|
//! | import, largest sample (durable)| `fhir::read_bundle` + `Device::write(Mapped::import)`      | `serde_json::from_str::<Value>`  |
//! | map only                        | `fhir::read_bundle` (parse + map + validate)               | same                             |
//! | import again (no change)        | `fhir::read_bundle` + `Mapped::preview` on the imported record | same                        |
//! | export (whole record)           | `fhir::export_bundle` + `serde_json::to_string`            | same                             |
//!
//! Without the samples the group prints why and measures nothing.

use std::path::{Path, PathBuf};
use std::time::Duration;

use std::collections::HashMap;

use phr::automerge::transaction::Transactable;
use phr::automerge::{AutoCommit, ROOT, ScalarValue, hydrate};
use phr::{Device, InitOptions, Section, fhir};
use serde_json::Value;

use crate::{Ctx, PASS, Row, bytes, cheap, median, ms, timed};

const REPS: usize = 11;
const LIMIT: f64 = 3.0;

/// The largest sample bundle, if the samples are there.
fn largest_sample() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fhir-samples");
    std::fs::read_dir(&dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .max_by_key(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
}

fn fresh_device(ctx: &Ctx, dir: &tempfile::TempDir) -> Device {
    let _ = ctx;
    Device::init(
        dir.path(),
        PASS,
        InitOptions {
            name: "Bench Patient".into(),
            dob: None,
            device_name: "bench".into(),
            kdf: cheap(),
        },
    )
    .expect("a fresh device")
}

/// Run the group.
// One piece: the group's scenarios in the order its rows print, each timed against its
// baseline in the same run; they share the parsed samples and the timers.
pub fn run(ctx: &Ctx) -> Vec<Row> {
    let Some(path) = largest_sample() else {
        eprintln!("  skipped: no FHIR samples in ../shared/fhir-samples");
        return Vec::new();
    };
    let text = std::fs::read_to_string(&path).expect("reading the sample");
    let name = path.file_name().unwrap_or_default().to_string_lossy().to_string();
    ctx.note(format!("sample {name}, {}", bytes(text.len() as u64)));

    if std::env::var_os("FHIR_PROBE_MAP").is_some() {
        let bundle: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        let (_, d) = timed(|| {
            for _ in 0..40 {
                fhir::map_bundle(&bundle).expect("maps");
            }
        });
        eprintln!("map_bundle alone: {} per run", ms(d / 40));
        return Vec::new();
    }
    // Warm up both paths once (page cache, allocator).
    let _ = serde_json::from_str::<serde_json::Value>(&text).expect("the sample is JSON");
    let _ = fhir::read_bundle(&text).expect("the sample maps");

    let mut parse = Vec::new();
    let mut map = Vec::new();
    let mut import = Vec::new();
    let mut again = Vec::new();
    let mut export = Vec::new();
    let mut bare = Vec::new();
    let mut memory = Vec::new();
    let mut bare_root = Vec::new();
    let mut entries = 0;
    for _ in 0..REPS {
        // Parsed and freed, as the import also frees the tree it parsed.
        let (v, d) = timed(|| serde_json::from_str::<serde_json::Value>(&text).map(drop));
        v.expect("the sample is JSON");
        parse.push(d);

        let (m, d) = timed(|| fhir::read_bundle(&text));
        m.expect("the sample maps");
        map.push(d);

        let dir = ctx.dir();
        let mut device = fresh_device(ctx, &dir);
        let (report, d) = timed(|| {
            let mapped = fhir::read_bundle(&text)?;
            device.write(|r| mapped.import(r, "bench"))
        });
        let report = report.expect("the sample imports");
        entries = report.changes();
        import.push(d);

        let mapped = fhir::read_bundle(&text).expect("the sample maps");
        let mut record = phr::Record::new(device.record().id(), phr::KeyPair::generate());
        let (r, d) = timed(|| mapped.import(&mut record, "bench"));
        r.expect("in-memory import");
        memory.push(d);

        let (report, d) = timed(|| fhir::read_bundle(&text).and_then(|m| m.preview(device.record())));
        assert_eq!(report.expect("preview").changes(), 0, "a second import changes nothing");
        again.push(d);

        let (json, d) = timed(|| {
            fhir::export_bundle(device.record(), device.access(), &Section::ALL, fhir::Zone::UTC)
                .map(|e| e.bundle.to_string())
        });
        json.expect("export");
        export.push(d);

        // The floor under the import: Automerge's own ops for the same entries, one
        // transaction per section, in fresh documents.
        let mut all = Vec::new();
        for section in Section::ALL {
            for e in device.record().list(section).expect("list") {
                let mut fields = e.fields.clone();
                for (k, v) in [("author", &e.author), ("created", &e.created), ("updated", &e.updated)] {
                    fields.insert(k.into(), v.clone().into());
                }
                all.push((section, e.id, fields));
            }
        }
        let ((), d) = timed(|| {
            let mut docs: std::collections::BTreeMap<Section, AutoCommit> = Default::default();
            for (section, id, fields) in &all {
                let doc = docs.entry(*section).or_default();
                let tree: HashMap<String, hydrate::Value> =
                    fields.iter().map(|(k, v)| (k.clone(), hydrate_json(v))).collect();
                doc.batch_create_object(ROOT, id.as_str(), &hydrate::Value::Map(tree.into()), false)
                    .expect("batch");
            }
            for doc in docs.values_mut() {
                doc.commit();
            }
        });
        bare.push(d);
        let ((), d) = timed(|| {
            let mut trees: std::collections::BTreeMap<Section, HashMap<String, hydrate::Value>> = Default::default();
            for (section, id, fields) in &all {
                let tree: HashMap<String, hydrate::Value> =
                    fields.iter().map(|(k, v)| (k.clone(), hydrate_json(v))).collect();
                trees
                    .entry(*section)
                    .or_default()
                    .insert(id.clone(), hydrate::Value::Map(tree.into()));
            }
            for (_, tree) in trees {
                let mut doc = AutoCommit::new();
                doc.init_root_from_hydrate(&tree.into()).expect("init");
                doc.commit();
            }
        });
        bare_root.push(d);
    }
    let base = median(&parse);
    let ratio = |d: Duration| d.as_secs_f64() / base.as_secs_f64();
    let figure = median(&import);
    eprintln!(
        "  {name}: {entries} entries; parse {} · map {} · import {} · import again {} · export {}",
        ms(base),
        ms(median(&map)),
        ms(figure),
        ms(median(&again)),
        ms(median(&export))
    );
    vec![
        Row::ratio(
            format!("FHIR import, largest sample ({entries} entries, durable)"),
            ms(figure),
            "serde_json parse of the file",
            ms(base),
            ratio(figure),
            LIMIT,
        ),
        Row::info(
            "… of which writing the mapped entries into a record in memory (ops, commit, sign)",
            ms(median(&memory)),
            "serde_json parse of the file",
            ms(base),
            Some(ratio(median(&memory))),
        ),
        Row::info(
            "bare Automerge: the same entries, bulk-built",
            ms(median(&bare)),
            "serde_json parse of the file",
            ms(base),
            Some(ratio(median(&bare))),
        ),
        Row::info(
            "bare Automerge: the same entries, one bulk root per section",
            ms(median(&bare_root)),
            "serde_json parse of the file",
            ms(base),
            Some(ratio(median(&bare_root))),
        ),
        Row::info(
            "FHIR map only (parse + map + validate)",
            ms(median(&map)),
            "serde_json parse of the file",
            ms(base),
            Some(ratio(median(&map))),
        ),
        Row::info(
            "FHIR import again (no change)",
            ms(median(&again)),
            "serde_json parse of the file",
            ms(base),
            Some(ratio(median(&again))),
        ),
        Row::info(
            "FHIR export, whole record",
            ms(median(&export)),
            "serde_json parse of the file",
            ms(base),
            Some(ratio(median(&export))),
        ),
    ]
}

/// A JSON value as Automerge's bulk object builder takes it.
fn hydrate_json(value: &Value) -> hydrate::Value {
    match value {
        Value::Null => hydrate::Value::scalar(ScalarValue::Null),
        Value::Bool(b) => hydrate::Value::scalar(*b),
        Value::Number(n) => hydrate::Value::scalar(n.as_f64().unwrap_or_default()),
        Value::String(s) => hydrate::Value::scalar(s.as_str()),
        Value::Array(items) => hydrate::Value::List(items.iter().map(hydrate_json).collect::<Vec<_>>().into()),
        Value::Object(m) => hydrate::Value::Map(
            m.iter()
                .map(|(k, v)| (k.clone(), hydrate_json(v)))
                .collect::<HashMap<_, _>>()
                .into(),
        ),
    }
}
