//! docs/openapi.json against the node's router as it really answers, so the two cannot drift:
//! every route the router serves with its methods is in the spec and nothing else is; open and
//! guarded routes are marked so; path, query and body parameters match what each handler
//! extracts; and every status the routes answer is documented, errors as OperationOutcomes.
//!
//! The router (`phr_node::api::router`) is called in this process with tower's `oneshot`, over
//! a real clinic store with a patient connected by iroh on loopback; no HTTP server is started.
//! Its paths come from `phr_node::api::paths` (the list the router is built from); which
//! methods each path answers, and which need the token, are found by asking it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, header};
use phr::clinic::Clinic;
use phr::sync::clinic::{self as connect, CLINIC_ALPN, ClinicTicket, ConnectHandler};
use phr::sync::net::NetConfig;
use phr::sync::{HostService, LibraryHost, SessionOptions};
use phr_node::api::{self, App};
use phr_node::http_hosts::AllowedHosts;
use serde_json::{Value, json};
use tower::ServiceExt;

#[allow(dead_code)] // not every helper of the shared test harness is used here
mod common;

use common::devices::{Phone, fast, first_device};

const SPEC: &str = include_str!("../docs/openapi.json");

/// The HTTP methods axum's `routing` module offers as functions and `MethodRouter` methods.
const METHODS: &[&str] = &["get", "post", "put", "delete", "patch", "head", "options", "trace"];

/// The API token of the node under test.
const TOKEN: &str = "0123456789abcdef0123456789abcdef0123456789abcdef";

// ---------------------------------------------------------------------------------------------
// Asking the router
// ---------------------------------------------------------------------------------------------

/// A clinic node's HTTP API in this process, over a new clinic store.
struct Api {
    router: Router,
    clinic: Arc<Clinic>,
    service: Arc<HostService<LibraryHost>>,
    _dir: tempfile::TempDir,
}

/// What the router answered.
#[derive(Debug)]
struct Answer {
    status: u16,
    body: String,
}

impl Answer {
    /// The body as JSON (null if it is not JSON).
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    /// axum's own answer to a path or a method nobody registered: 404 or 405, no body (every
    /// handler of the API answers with a body, errors with an OperationOutcome).
    fn unrouted(&self) -> bool {
        matches!(self.status, 404 | 405) && self.body.is_empty()
    }
}

impl Api {
    async fn start() -> Api {
        let dir = tempfile::tempdir().unwrap();
        let clinic =
            Arc::new(Clinic::create(&dir.path().join("clinic.redb"), "pw", "Bright Steps Therapy", fast()).unwrap());
        let c = clinic.clone();
        let service = Arc::new(
            HostService::start_with(clinic.host().clone(), NetConfig::local(), move |b| {
                b.accept(CLINIC_ALPN, ConnectHandler::new(c))
            })
            .await
            .unwrap(),
        );
        let hosts = AllowedHosts::new("127.0.0.1:4920".parse().unwrap(), &[]);
        let app = App::new(
            clinic.clone(),
            service.clone(),
            TOKEN.to_string(),
            hosts,
            Instant::now(),
            Duration::ZERO,
        );
        Api {
            router: api::router(app),
            clinic,
            service,
            _dir: dir,
        }
    }

    /// A patient's phone connects its record to the clinic and syncs; returns the phone (keep
    /// it) and the record's id as the API names it.
    async fn connect_patient(&self) -> (Phone, String) {
        let phone = first_device().await;
        let (_, ticket) = self
            .clinic
            .invite(self.service.addr(), Duration::from_secs(600), Some(1), None)
            .unwrap();
        let ticket = ClinicTicket::parse(&ticket.to_text()).unwrap();
        connect::connect(phone.service.endpoint(), phone.replica(), &ticket, &NetConfig::local())
            .await
            .unwrap();
        phone
            .service
            .sync_once(self.service.addr(), SessionOptions::default())
            .await
            .unwrap();
        let patients = self.call("get", "/v1/patients", None).await.json();
        let id = patients[0]["id"].as_str().expect("the connected patient").to_string();
        (phone, id)
    }

    /// `method uri` with `Host: host`, the bearer `token` if any, and a JSON `body` if any.
    async fn send(&self, method: &str, uri: &str, token: Option<&str>, host: &str, body: Option<&str>) -> Answer {
        let mut req = Request::builder()
            .method(method.to_uppercase().as_str())
            .uri(uri)
            .header(header::HOST, host);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let body = match body {
            Some(b) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Body::from(b.to_string())
            }
            None => Body::empty(),
        };
        let res = self.router.clone().oneshot(req.body(body).unwrap()).await.unwrap();
        let status = res.status().as_u16();
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 24).await.unwrap();
        Answer {
            status,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// `method uri` with the token, from localhost.
    async fn call(&self, method: &str, uri: &str, body: Option<&str>) -> Answer {
        self.send(method, uri, Some(TOKEN), "localhost", body).await
    }
}

/// A route's path with each `{name}` replaced by `name`: any value reaches the handler.
fn sample(path: &str) -> String {
    path.replace(['{', '}'], "")
}

/// One route as the router serves it.
#[derive(Debug)]
struct Route {
    path: String,
    method: String,
    /// Answered without the bearer token.
    open: bool,
}

/// Every (path, method) the router answers: each path it is built from, asked with every
/// method (with the token, so a guarded route is reached); then, without the token, whether
/// the bearer-token layer refuses it.
async fn routes(api: &Api) -> Vec<Route> {
    let mut out = Vec::new();
    for path in api::paths() {
        let uri = sample(path);
        let mut methods = Vec::new();
        for m in METHODS {
            // axum answers HEAD with a GET handler by itself; the spec documents the GET.
            if *m == "head" && methods.contains(&"get") {
                continue;
            }
            if !api.call(m, &uri, None).await.unrouted() {
                methods.push(*m);
            }
        }
        assert!(!methods.is_empty(), "no method found for route {path}");
        for m in methods {
            let open = api.send(m, &uri, None, "localhost", None).await.status != 401;
            out.push(Route {
                path: path.to_string(),
                method: m.to_string(),
                open,
            });
        }
    }
    out
}

/// The fields a struct deserializes (serde hands their names to the deserializer).
fn fields_of<T: serde::de::DeserializeOwned>() -> BTreeSet<&'static str> {
    use serde::de::{Error, Visitor, value};

    /// A deserializer that only notes the fields it is asked for.
    struct Introspect<'a>(&'a mut &'static [&'static str]);

    impl<'de> serde::Deserializer<'de> for Introspect<'_> {
        type Error = value::Error;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, value::Error> {
            Err(value::Error::custom("not a struct"))
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, value::Error> {
            *self.0 = fields;
            Err(value::Error::custom("fields noted"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
            ignored_any
        }
    }

    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Introspect(&mut fields));
    fields.iter().copied().collect()
}

// ---------------------------------------------------------------------------------------------
// Reading the spec
// ---------------------------------------------------------------------------------------------

fn spec() -> Value {
    serde_json::from_str(SPEC).expect("docs/openapi.json is valid JSON (the node serves it with include_str!)")
}

/// Every FHIR resource among the spec's examples (anything with a `resourceType`), with where.
fn fhir_examples<'a>(v: &'a Value, at: String, out: &mut Vec<(String, &'a Value)>) {
    match v {
        Value::Object(m) if m.get("resourceType").is_some_and(Value::is_string) => out.push((at, v)),
        Value::Object(m) => m.iter().for_each(|(k, x)| fhir_examples(x, format!("{at}/{k}"), out)),
        Value::Array(l) => l
            .iter()
            .enumerate()
            .for_each(|(i, x)| fhir_examples(x, format!("{at}/{i}"), out)),
        _ => {}
    }
}

#[test]
fn every_fhir_example_in_the_spec_is_valid_r4() {
    let doc = spec();
    let mut found = Vec::new();
    fhir_examples(&doc, String::new(), &mut found);
    assert!(found.len() > 30, "the spec's examples: {}", found.len());
    let named: Vec<(String, Value)> = found.into_iter().map(|(at, v)| (at, v.clone())).collect();
    let problems = common::fhir_validator::fhir_problems_each(named);
    assert!(problems.is_empty(), "docs/openapi.json:\n{}", problems.join("\n"));
}

/// Follow a local `$ref` (`#/components/…`).
fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    let mut v = v;
    for _ in 0..16 {
        let Some(r) = v.get("$ref").and_then(Value::as_str) else {
            return v;
        };
        let pointer = r
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("`{r}` is not a local reference"));
        v = doc
            .pointer(pointer)
            .unwrap_or_else(|| panic!("`{r}` points at nothing"));
    }
    panic!("a $ref chain is too long");
}

/// Every operation of the spec: (path, method) → operation, with the path item's parameters.
fn operations(doc: &Value) -> BTreeMap<(String, String), (&Value, Vec<&Value>)> {
    let mut out = BTreeMap::new();
    for (path, item) in doc["paths"].as_object().expect("`paths` is an object") {
        let shared: Vec<&Value> = item
            .get("parameters")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(|p| resolve(doc, p)).collect())
            .unwrap_or_default();
        for (method, op) in item.as_object().expect("a path item is an object") {
            if !METHODS.contains(&method.as_str()) {
                continue;
            }
            let mut params = shared.clone();
            if let Some(own) = op.get("parameters").and_then(Value::as_array) {
                for p in own {
                    let p = resolve(doc, p);
                    params.retain(|q| (q["name"].as_str(), q["in"].as_str()) != (p["name"].as_str(), p["in"].as_str()));
                    params.push(p);
                }
            }
            out.insert((path.clone(), method.clone()), (op, params));
        }
    }
    out
}

fn params_in<'a>(params: &[&'a Value], place: &str) -> BTreeSet<&'a str> {
    params
        .iter()
        .filter(|p| p["in"] == place)
        .map(|p| p["name"].as_str().expect("a parameter has a name"))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// FHIR resources as a clinic's EHR sends them, for the answers that succeed
// ---------------------------------------------------------------------------------------------

fn session_note() -> Value {
    json!({
        "resourceType": "DocumentReference",
        "id": "visit-1",
        "status": "current",
        "type": { "text": "Speech therapy progress note" },
        "author": [{ "type": "Practitioner", "display": "Jane Roe" }],
        "description": "Plan: practise /s/ blends daily",
        "context": { "period": { "start": "2024-03-02T10:00:00Z", "end": "2024-03-02T10:45:00Z" } }
    })
}

fn lab() -> Value {
    json!({
        "resourceType": "Observation",
        "id": "lab-1",
        "status": "final",
        "code": { "text": "Hemoglobin" },
        "effectiveDateTime": "2024-03-02",
        "valueQuantity": { "value": 13.2, "unit": "g/dL" }
    })
}

fn appointment(description: &str) -> Value {
    json!({
        "resourceType": "Appointment",
        "id": "a1",
        "status": "booked",
        "description": description,
        "start": "2024-03-12T15:30:00-04:00",
        "end": "2024-03-12T16:15:00-04:00",
        "participant": [{ "actor": { "reference": "Practitioner/pr-7", "display": "Jane Roe" }, "status": "accepted" }]
    })
}

fn intake_form() -> Value {
    json!({
        "resourceType": "Questionnaire",
        "id": "speech-intake",
        "status": "active",
        "title": "Speech intake",
        "item": [{ "linkId": "age", "text": "Age in years", "type": "integer" }]
    })
}

fn message() -> Value {
    json!({
        "resourceType": "Communication",
        "id": "m1",
        "status": "completed",
        "sent": "2024-03-05T10:00:00Z",
        "payload": [{ "contentString": "See you on Tuesday." }],
        "topic": { "text": "Scheduling" }
    })
}

/// Every answer the routes give in a session that tries each way in: a wrong `Host`, no or a
/// wrong token, no body, a body that is not JSON or not the right JSON, unknown patients,
/// invitations, staff and actions, and the requests that succeed, writes twice (created,
/// then unchanged). Keyed by (spec path, method).
async fn answers(api: &Api, all: &[Route]) -> BTreeMap<(String, String), Vec<Answer>> {
    let mut seen: BTreeMap<(String, String), Vec<Answer>> = BTreeMap::new();
    for r in all {
        let uri = sample(&r.path);
        let mut got = vec![
            api.send(&r.method, &uri, Some(TOKEN), "evil.example", None).await,
            api.call(&r.method, &uri, None).await,
        ];
        if !r.open {
            got.push(api.send(&r.method, &uri, None, "localhost", None).await);
            got.push(api.send(&r.method, &uri, Some("wrong"), "localhost", None).await);
        }
        if matches!(r.method.as_str(), "post" | "put") {
            got.push(api.call(&r.method, &uri, Some("{\"resourceType\": ")).await);
            got.push(api.call(&r.method, &uri, Some("[]")).await);
        }
        seen.entry((r.path.clone(), r.method.clone())).or_default().extend(got);
    }
    let (_phone, patient) = api.connect_patient().await;
    let mut log = |path: &str, method: &str, a: Answer| {
        seen.entry((path.to_string(), method.to_string())).or_default().push(a);
        seen[&(path.to_string(), method.to_string())].last().unwrap().json()
    };
    for path in [
        "/health",
        "/metrics",
        "/openapi.json",
        "/v1/clinic",
        "/v1/invites",
        "/v1/staff",
        "/v1/patients",
    ] {
        log(path, "get", api.call("get", path, None).await);
    }

    // Invitations and staff: made, listed, withdrawn or removed, refused.
    let invite = log(
        "/v1/invites",
        "post",
        api.call("post", "/v1/invites", Some(r#"{"expires":"1h"}"#)).await,
    );
    log(
        "/v1/invites",
        "post",
        api.call("post", "/v1/invites", Some(r#"{"expires":"soon"}"#)).await,
    );
    let id = invite["id"].as_str().expect("an invitation id");
    log(
        "/v1/invites/{id}",
        "delete",
        api.call("delete", &format!("/v1/invites/{id}"), None).await,
    );
    log(
        "/v1/staff",
        "post",
        api.call("post", "/v1/staff", Some(r#"{"name":"Jane Roe","role":"SLP"}"#))
            .await,
    );
    let temp = log(
        "/v1/staff",
        "post",
        api.call("post", "/v1/staff", Some(r#"{"name":"Temp"}"#)).await,
    );
    log(
        "/v1/staff",
        "post",
        api.call("post", "/v1/staff", Some(r#"{"name":"X","sections":["nonsense"]}"#))
            .await,
    );
    let key = temp["key"].as_str().expect("a staff key");
    log(
        "/v1/staff/{who}",
        "delete",
        api.call("delete", &format!("/v1/staff/{key}"), None).await,
    );

    // Writes to the patient's record, each twice, and the lists.
    let p = format!("/v1/patients/{patient}");
    let by = "?clinician=Jane%20Roe";
    let mut appointment_id = String::new();
    for (route, resource) in [
        ("notes", session_note()),
        ("labs", lab()),
        ("appointments", appointment("Follow-up speech session")),
        ("forms", intake_form()),
        ("messages", message()),
    ] {
        let path = format!("/v1/patients/{{patient}}/{route}");
        let body = resource.to_string();
        for _ in 0..2 {
            let done = log(
                &path,
                "post",
                api.call("post", &format!("{p}/{route}{by}"), Some(&body)).await,
            );
            if route == "appointments" {
                appointment_id = done["id"].as_str().expect("the appointment's id").to_string();
            }
        }
        log(
            &path,
            "post",
            api.call(
                "post",
                &format!("{p}/{route}{by}"),
                Some(r#"{"resourceType":"Patient"}"#),
            )
            .await,
        );
        if route != "notes" && route != "labs" {
            log(&path, "get", api.call("get", &format!("{p}/{route}"), None).await);
            log(
                &path,
                "get",
                api.call("get", &format!("/v1/patients/nobody/{route}"), None).await,
            );
        }
    }
    log(
        "/v1/patients/{patient}/forms",
        "get",
        api.call("get", &format!("{p}/forms?status=bogus"), None).await,
    );
    let one = "/v1/patients/{patient}/appointments/{id}";
    let moved = appointment("Moved to the afternoon").to_string();
    let uri = format!("{p}/appointments/{appointment_id}{by}");
    log(one, "put", api.call("put", &uri, Some(&moved)).await);
    log(
        one,
        "put",
        api.call("put", &format!("{p}/appointments/nothing{by}"), Some(&moved))
            .await,
    );
    let action = "/v1/patients/{patient}/appointments/{id}/{action}";
    for what in ["confirm", "cancel", "bogus"] {
        let uri = format!("{p}/appointments/{appointment_id}/{what}{by}");
        log(action, "post", api.call("post", &uri, None).await);
    }
    seen
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[test]
fn the_spec_is_openapi_3_1_with_bearer_auth_and_local_references_that_resolve() {
    let doc = spec();
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.1.")),
        "openapi 3.1.x"
    );
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    let scheme = &doc["components"]["securitySchemes"]["bearerAuth"];
    assert_eq!(scheme["type"], "http");
    assert_eq!(scheme["scheme"], "bearer");
    assert_eq!(
        doc["security"],
        serde_json::json!([{ "bearerAuth": [] }]),
        "bearer by default"
    );

    fn walk(doc: &Value, v: &Value, at: &str) {
        match v {
            Value::Object(m) => {
                if let Some(r) = m.get("$ref").and_then(Value::as_str) {
                    let target = r.strip_prefix('#').and_then(|p| doc.pointer(p));
                    assert!(target.is_some(), "{at}: `{r}` does not resolve");
                }
                for (k, x) in m {
                    walk(doc, x, &format!("{at}/{k}"));
                }
            }
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    walk(doc, x, &format!("{at}/{i}"));
                }
            }
            _ => {}
        }
    }
    walk(&doc, &doc, "");
}

/// The router is read as expected: the routes are found, a method nobody registered is told
/// from one that is, open from guarded, and the query types' fields are listed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_source_is_read_as_expected() {
    let api = Api::start().await;
    let all = routes(&api).await;
    assert!(all.len() >= 10, "found only {} routes: {all:?}", all.len());
    assert!(all.iter().any(|r| r.path == "/health" && r.method == "get" && r.open));
    assert!(
        all.iter()
            .any(|r| r.path == "/v1/patients/{patient}/appointments" && r.method == "get" && !r.open)
    );
    assert_eq!(api.call("get", "/health", None).await.json()["status"], "ok");
    let wrong_method = api.call("delete", "/health", None).await;
    assert!(
        wrong_method.unrouted() && wrong_method.status == 405,
        "{wrong_method:?}"
    );
    let no_route = api.call("get", "/v1/nowhere", None).await;
    assert!(no_route.unrouted() && no_route.status == 404, "{no_route:?}");
    assert_eq!(fields_of::<api::WriteQuery>(), BTreeSet::from(["clinician"]));
    assert_eq!(fields_of::<api::ListQuery>(), BTreeSet::from(["status"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_in_the_router_is_in_the_spec_with_the_same_methods_and_nothing_else_is() {
    let doc = spec();
    let api = Api::start().await;
    let in_router: BTreeSet<(String, String)> = routes(&api).await.into_iter().map(|r| (r.path, r.method)).collect();
    let in_spec: BTreeSet<(String, String)> = operations(&doc).into_keys().collect();
    let missing: Vec<_> = in_router.difference(&in_spec).collect();
    let extra: Vec<_> = in_spec.difference(&in_router).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "docs/openapi.json and the node's router disagree.\n  registered but not documented: {missing:?}\n  documented but not registered: {extra:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_routes_need_no_token_and_every_other_route_needs_the_bearer_token() {
    let doc = spec();
    let ops = operations(&doc);
    let api = Api::start().await;
    for r in routes(&api).await {
        // A route missing from the spec is reported by the test comparing the two lists.
        let Some((op, _)) = ops.get(&(r.path.clone(), r.method.clone())) else {
            continue;
        };
        let security = op.get("security");
        if r.open {
            assert_eq!(
                security,
                Some(&serde_json::json!([])),
                "{} {} is open in the router: the spec must say `security: []`",
                r.method,
                r.path
            );
        } else {
            assert!(
                security.is_none() || security == Some(&serde_json::json!([{ "bearerAuth": [] }])),
                "{} {} needs the token: leave the default security",
                r.method,
                r.path
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parameters_and_bodies_match_what_each_handler_extracts() {
    let doc = spec();
    let ops = operations(&doc);
    let api = Api::start().await;
    // Every query parameter a handler could read: the fields of the API's query types and
    // every query parameter the spec names anywhere.
    let mut candidates = fields_of::<api::WriteQuery>();
    candidates.extend(fields_of::<api::ListQuery>());
    for (_, params) in ops.values() {
        candidates.extend(params_in(params, "query"));
    }
    for r in routes(&api).await {
        let at = format!("{} {}", r.method.to_uppercase(), r.path);
        let Some((op, params)) = ops.get(&(r.path.clone(), r.method.clone())) else {
            continue;
        };
        let uri = sample(&r.path);

        // Path parameters: exactly the `{names}` in the path, each required.
        let in_path: BTreeSet<&str> = r
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .collect();
        assert_eq!(params_in(params, "path"), in_path, "{at}: path parameters");
        for p in params.iter().filter(|p| p["in"] == "path") {
            assert_eq!(
                p["required"], true,
                "{at}: path parameter {} must be required",
                p["name"]
            );
        }

        // Query parameters: the fields of the handler's `Query<T>`, found by giving each
        // twice, which only a handler that reads it refuses (serde: duplicate field).
        let mut expected = BTreeSet::new();
        for name in &candidates {
            let a = api.call(&r.method, &format!("{uri}?{name}=1&{name}=2"), None).await;
            if a.status == 400 && a.body.contains("duplicate field") {
                expected.insert(*name);
            }
        }
        assert_eq!(params_in(params, "query"), expected, "{at}: query parameters");

        // A request body exactly when the handler reads one: only then is a body that is not
        // JSON refused as such.
        let a = api.call(&r.method, &uri, Some("{\"resourceType\": ")).await;
        let reads_body = a.status == 400
            && a.json()["issue"][0]["diagnostics"]
                .as_str()
                .is_some_and(|e| e.starts_with("the request body is not valid JSON"));
        assert_eq!(
            op.get("requestBody").is_some(),
            reads_body,
            "{at}: the handler {} a JSON body ({a:?})",
            if reads_body { "reads" } else { "reads no" }
        );
        if let Some(body) = op.get("requestBody") {
            let body = resolve(&doc, body);
            assert!(
                body["content"].get("application/json").is_some(),
                "{at}: the body is accepted as application/json"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_status_a_handler_produces_is_documented_with_an_operation_outcome() {
    let doc = spec();
    let ops = operations(&doc);
    let api = Api::start().await;
    let all = routes(&api).await;
    let seen = answers(&api, &all).await;
    for r in &all {
        let at = format!("{} {}", r.method.to_uppercase(), r.path);
        let Some((op, _)) = ops.get(&(r.path.clone(), r.method.clone())) else {
            continue;
        };
        let responses = op["responses"].as_object().expect("responses");
        let documented: BTreeSet<u16> = responses
            .keys()
            .map(|k| {
                k.parse()
                    .unwrap_or_else(|_| panic!("{at}: response `{k}` is not a status"))
            })
            .collect();

        let answered = &seen[&(r.path.clone(), r.method.clone())];
        let produced: BTreeSet<u16> = answered.iter().map(|a| a.status).collect();
        // Every route, open or guarded, is behind the Host check; the guarded ones behind the token.
        assert!(produced.contains(&421), "{at}: the Host check answers 421");
        assert_eq!(produced.contains(&401), !r.open, "{at}: the token check answers 401");
        for a in answered.iter().filter(|a| a.status >= 400) {
            assert_eq!(
                a.json()["resourceType"],
                "OperationOutcome",
                "{at}: the error {} is an OperationOutcome: {}",
                a.status,
                a.body
            );
        }
        let success: BTreeSet<u16> = produced.iter().copied().filter(|s| *s < 300).collect();
        let documented_success: BTreeSet<u16> = documented.iter().copied().filter(|s| *s < 300).collect();
        assert_eq!(documented_success, success, "{at}: success statuses");
        let undocumented: Vec<_> = produced.difference(&documented).collect();
        assert!(
            undocumented.is_empty(),
            "{at}: statuses not documented: {undocumented:?}"
        );

        for (code, res) in responses {
            let res = resolve(&doc, res);
            assert!(res["description"].is_string(), "{at} {code}: a description");
            if code.starts_with('4') || code.starts_with('5') {
                let schema = &res["content"]["application/json"]["schema"];
                assert_eq!(
                    schema["$ref"], "#/components/schemas/OperationOutcome",
                    "{at} {code}: errors are OperationOutcomes"
                );
            }
        }
    }
}
