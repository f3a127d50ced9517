//! The local HTTP API for the clinic's EHR and scripts: FHIR R4 resources in and out,
//! staff and invitations, health and Prometheus metrics. Every route except `/health`,
//! `/metrics` and `/openapi.json` needs `Authorization: Bearer <api-token>`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::http_hosts::AllowedHosts;
use axum::Json;
use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, post, put};
use phr_engine::Section;
use phr_engine::clinic::Clinic;
use phr_engine::duration;
use phr_engine::error::shown;
use phr_engine::fhir;
use phr_engine::sync::{HostService, LibraryHost};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::ops::{self, OpError, OpResult};

/// The OpenAPI description served at `/openapi.json` (kept in docs/).
pub const OPENAPI: &str = include_str!("../../docs/openapi.json");

/// Everything the routes share.
pub struct App {
    /// The clinic and its records.
    pub clinic: Arc<Clinic>,
    /// The iroh endpoint serving patients' devices.
    pub service: Arc<HostService<LibraryHost>>,
    /// Bearer token the API demands.
    pub token: String,
    /// `Host` values the API answers to.
    pub hosts: AllowedHosts,
    /// When the node started.
    pub started: Instant,
    /// Seconds the node took to start serving.
    pub startup: Duration,
    requests: AtomicU64,
    failures: AtomicU64,
}

impl App {
    /// Shared state for the routes.
    pub fn new(
        clinic: Arc<Clinic>,
        service: Arc<HostService<LibraryHost>>,
        token: String,
        hosts: AllowedHosts,
        started: Instant,
        startup: Duration,
    ) -> Arc<App> {
        Arc::new(App {
            clinic,
            service,
            token,
            hosts,
            started,
            startup,
            requests: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        })
    }
}

type Shared = State<Arc<App>>;

impl IntoResponse for OpError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        // A FHIR OperationOutcome, and nothing beside it (FHIR JSON has no other keys): the
        // words are its one issue's `diagnostics`.
        let body = json!({
            "resourceType": "OperationOutcome",
            "issue": [{
                "severity": "error",
                "code": if status.is_client_error() { "invalid" } else { "exception" },
                "diagnostics": self.message,
            }],
        });
        (status, Json(body)).into_response()
    }
}

/// Run blocking engine work off the async threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> OpResult<T> + Send + 'static) -> OpResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(OpError::new(500, format!("the operation failed: {e}"))))
}

fn body(b: std::result::Result<Json<Value>, JsonRejection>) -> OpResult<Value> {
    match b {
        Ok(Json(v)) => Ok(v),
        Err(e) => Err(OpError::new(
            400,
            format!("the request body is not valid JSON: {}", e.body_text()),
        )),
    }
}

/// A route: its path and the handlers of its methods.
type Route = (&'static str, MethodRouter<Arc<App>>);

/// The routes anyone on an allowed host may call.
fn open_routes() -> Vec<Route> {
    vec![
        ("/health", get(health)),
        ("/metrics", get(metrics)),
        ("/openapi.json", get(openapi)),
    ]
}

/// The routes that need the API token.
fn guarded_routes() -> Vec<Route> {
    vec![
        ("/v1/clinic", get(clinic_info)),
        ("/v1/invites", post(create_invite).get(list_invites)),
        ("/v1/invites/{id}", delete(withdraw_invite)),
        ("/v1/staff", get(list_staff).post(add_staff)),
        ("/v1/staff/{who}", delete(remove_staff)),
        ("/v1/patients", get(list_patients)),
        ("/v1/patients/{patient}/notes", post(push_note)),
        ("/v1/patients/{patient}/labs", post(push_lab)),
        (
            "/v1/patients/{patient}/appointments",
            post(push_appointment).get(list_appointments),
        ),
        ("/v1/patients/{patient}/appointments/{id}", put(update_appointment)),
        (
            "/v1/patients/{patient}/appointments/{id}/{action}",
            post(appointment_action),
        ),
        ("/v1/patients/{patient}/forms", post(push_form).get(list_forms)),
        ("/v1/patients/{patient}/messages", post(push_message).get(list_messages)),
    ]
}

/// The path of every route [`router`] serves, open and guarded (tests/openapi.rs compares
/// them, and what each answers, with docs/openapi.json).
pub fn paths() -> Vec<&'static str> {
    open_routes()
        .into_iter()
        .chain(guarded_routes())
        .map(|(path, _)| path)
        .collect()
}

/// The HTTP routes: every one behind the `Host` check, all but the open ones behind the token.
pub fn router(app: Arc<App>) -> Router {
    let mount = |routes: Vec<Route>| {
        routes
            .into_iter()
            .fold(Router::new(), |r, (path, methods)| r.route(path, methods))
    };
    let guarded = mount(guarded_routes()).route_layer(middleware::from_fn_with_state(app.clone(), authorize));
    mount(open_routes())
        .merge(guarded)
        .layer(middleware::from_fn_with_state(app.clone(), check_host))
        .layer(middleware::from_fn_with_state(app.clone(), count))
        .with_state(app)
}

async fn count(State(app): Shared, req: Request, next: Next) -> Response {
    app.requests.fetch_add(1, Ordering::Relaxed);
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    let res = next.run(req).await;
    if !res.status().is_success() {
        app.failures.fetch_add(1, Ordering::Relaxed);
        tracing::info!(%method, %path, status = res.status().as_u16(), "request refused");
    } else {
        tracing::debug!(%method, %path, status = res.status().as_u16(), "request");
    }
    res
}

/// Refuse a request that names a host the node does not answer to (a web page reaching the
/// API through a name of its own), before it touches anything.
async fn check_host(State(app): Shared, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .map(|h| h.to_str().unwrap_or("(not text)"))
        .or_else(|| req.uri().host())
        .unwrap_or("")
        .to_string();
    if app.hosts.allows(&host) {
        return next.run(req).await;
    }
    OpError::new(
        421,
        format!(
            "this node does not answer to the host `{}`: call it as localhost or 127.0.0.1, or add the name to http_allowed_hosts in phr-node.toml",
            if host.is_empty() { "(none given)".to_string() } else { shown(&host) }
        ),
    )
    .into_response()
}

async fn authorize(State(app): Shared, headers: HeaderMap, req: Request, next: Next) -> Response {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        Some(t) if constant_time_eq(t.as_bytes(), app.token.as_bytes()) => next.run(req).await,
        Some(_) => OpError::new(401, "the API token is wrong (see the node's `api-token` file)").into_response(),
        None => OpError::new(
            401,
            "this route needs `Authorization: Bearer <token>` (the token is in the node's `api-token` file)",
        )
        .into_response(),
    }
}

/// Compare without revealing, by timing, how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn health(State(app): Shared) -> Response {
    let clinic = app.clinic.clone();
    let records = tokio::task::spawn_blocking(move || clinic.host().lock().store().record_count())
        .await
        .ok()
        .and_then(|r| r.ok());
    match records {
        Some(n) => Json(json!({
            "status": "ok",
            "clinic": app.clinic.name(),
            "records": n,
            "uptime_secs": app.started.elapsed().as_secs(),
        }))
        .into_response(),
        None => OpError::new(503, "the record store cannot be read").into_response(),
    }
}

async fn metrics(State(app): Shared) -> Response {
    let clinic = app.clinic.clone();
    let counts = tokio::task::spawn_blocking(move || {
        let lib = clinic.host().lock();
        (lib.store().record_count().unwrap_or(0), lib.loaded_count())
    })
    .await
    .unwrap_or((0, 0));
    let totals = app.clinic.host().totals();
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: String| {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"));
    };
    metric(
        "phr_records_hosted",
        "gauge",
        "Patient records this node hosts.",
        counts.0.to_string(),
    );
    metric(
        "phr_records_loaded",
        "gauge",
        "Records in memory now.",
        counts.1.to_string(),
    );
    metric(
        "phr_connections_active",
        "gauge",
        "Sync sessions devices have open with this node.",
        app.service.active_sessions().to_string(),
    );
    metric(
        "phr_changes_received_total",
        "counter",
        "Changes received from devices, verified and stored.",
        totals.changes_in.to_string(),
    );
    metric(
        "phr_changes_sent_total",
        "counter",
        "Changes sent to devices.",
        totals.changes_out.to_string(),
    );
    metric(
        "phr_changes_rejected_total",
        "counter",
        "Received changes refused (bad signature, no right to write, revoked).",
        totals.rejected.to_string(),
    );
    metric(
        "phr_changes_written_total",
        "counter",
        "Changes written by this node (notes, results, appointments, forms, messages).",
        totals.written.to_string(),
    );
    metric(
        "phr_http_requests_total",
        "counter",
        "HTTP API requests.",
        app.requests.load(Ordering::Relaxed).to_string(),
    );
    metric(
        "phr_http_failures_total",
        "counter",
        "HTTP API requests answered with an error.",
        app.failures.load(Ordering::Relaxed).to_string(),
    );
    metric(
        "phr_uptime_seconds",
        "gauge",
        "Seconds since the node started.",
        app.started.elapsed().as_secs().to_string(),
    );
    metric(
        "phr_startup_seconds",
        "gauge",
        "Seconds the node took to open its store and start serving.",
        format!("{:.3}", app.startup.as_secs_f64()),
    );
    let mut res = out.into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    res
}

async fn openapi() -> Response {
    let mut res = OPENAPI.into_response();
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}

async fn clinic_info(State(app): Shared) -> Json<Value> {
    let addr = app.service.addr();
    Json(json!({
        "name": app.clinic.name(),
        "key": app.clinic.key().to_string(),
        "addrs": addr.ip_addrs().map(|a| a.to_string()).collect::<Vec<_>>(),
    }))
}

#[derive(Debug, Deserialize)]
struct InviteRequest {
    /// Validity: `30m`, `12h`, `7d` or plain seconds, at most 3650d (default 7d).
    #[serde(default)]
    expires: Option<String>,
    /// How many patients may use it (default 1; 0 for any number until it expires).
    #[serde(default)]
    uses: Option<u32>,
    /// Whom it is for.
    #[serde(default)]
    label: Option<String>,
}

async fn create_invite(State(app): Shared, b: std::result::Result<Json<Value>, JsonRejection>) -> OpResult<Response> {
    let req: InviteRequest =
        serde_json::from_value(body(b)?).map_err(|e| OpError::new(422, format!("not an invitation request: {e}")))?;
    let ttl = duration::parse(req.expires.as_deref().unwrap_or("7d"))
        .map_err(|e| OpError::new(422, format!("expires: {e}")))?;
    let uses = match req.uses {
        Some(0) => None,
        Some(n) => Some(n),
        None => Some(1),
    };
    let (clinic, addr) = (app.clinic.clone(), app.service.addr());
    let (id, ticket) = blocking(move || Ok(clinic.invite(addr, ttl, uses, req.label)?)).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "id": id,
            "ticket": ticket.to_text(),
            "clinic": ticket.name,
            "expires": chrono::DateTime::from_timestamp(ticket.expires, 0).map(|t| t.to_rfc3339()),
        })),
    )
        .into_response())
}

async fn withdraw_invite(State(app): Shared, Path(id): Path<String>) -> OpResult<Json<Value>> {
    let clinic = app.clinic.clone();
    let i = blocking(move || {
        clinic
            .withdraw_invite(&id)
            .map_err(|e| OpError::new(404, e.to_string()))
    })
    .await?;
    Ok(Json(json!({"id": i.id, "label": i.label, "withdrawn": true})))
}

async fn list_invites(State(app): Shared) -> OpResult<Json<Value>> {
    let clinic = app.clinic.clone();
    let invites = blocking(move || Ok(clinic.invites()?)).await?;
    Ok(Json(json!(
        invites
            .iter()
            .map(|i| json!({
                "id": i.id,
                "label": i.label,
                "uses_left": i.uses_left,
                "expires": chrono::DateTime::from_timestamp(i.expires, 0).map(|t| t.to_rfc3339()),
            }))
            .collect::<Vec<_>>()
    )))
}

#[derive(Debug, Deserialize)]
struct StaffRequest {
    name: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    sections: Vec<String>,
}

fn staff_json(m: &phr_engine::clinic::StaffMember) -> Value {
    json!({
        "key": m.key.to_string(),
        "name": m.name,
        "role": m.role,
        "sections": m.sections.iter().map(|s| s.name()).collect::<Vec<_>>(),
        "added": chrono::DateTime::from_timestamp(m.added, 0).map(|t| t.to_rfc3339()),
        "removed": m.removed.and_then(|r| chrono::DateTime::from_timestamp(r, 0)).map(|t| t.to_rfc3339()),
    })
}

async fn list_staff(State(app): Shared) -> Json<Value> {
    Json(json!(app.clinic.staff().iter().map(staff_json).collect::<Vec<_>>()))
}

async fn add_staff(State(app): Shared, b: std::result::Result<Json<Value>, JsonRejection>) -> OpResult<Response> {
    let req: StaffRequest =
        serde_json::from_value(body(b)?).map_err(|e| OpError::new(422, format!("not a staff member: {e}")))?;
    let sections = req
        .sections
        .iter()
        .map(|s| s.parse::<Section>())
        .collect::<phr_engine::Result<Vec<_>>>()?;
    let clinic = app.clinic.clone();
    let m = blocking(move || Ok(clinic.add_staff(&req.name, &req.role, sections)?)).await?;
    Ok((StatusCode::CREATED, Json(staff_json(&m))).into_response())
}

async fn remove_staff(State(app): Shared, Path(who): Path<String>) -> OpResult<Json<Value>> {
    let clinic = app.clinic.clone();
    let (m, revoked) =
        blocking(move || clinic.remove_staff(&who).map_err(|e| OpError::new(404, e.to_string()))).await?;
    let mut v = staff_json(&m);
    v["records_revoked"] = json!(revoked);
    Ok(Json(v))
}

async fn list_patients(State(app): Shared) -> OpResult<Json<Value>> {
    let clinic = app.clinic.clone();
    let all = blocking(move || Ok(clinic.patients()?)).await?;
    Ok(Json(json!(
        all.iter()
            .map(|p| json!({"id": p.record.to_string(), "name": p.name, "connected": p.added}))
            .collect::<Vec<_>>()
    )))
}

/// The query of the routes that write (public so tests/openapi.rs can list its fields).
#[derive(Debug, Default, Deserialize)]
pub struct WriteQuery {
    /// Staff member the write is attributed to (name or key).
    clinician: Option<String>,
}

async fn push(
    app: Arc<App>,
    patient: String,
    resource_type: &'static str,
    q: WriteQuery,
    b: std::result::Result<Json<Value>, JsonRejection>,
) -> OpResult<Response> {
    let res = body(b)?;
    let clinic = app.clinic.clone();
    let pushed = blocking(move || ops::push(&clinic, &patient, resource_type, &res, q.clinician.as_deref())).await?;
    let status = if pushed.outcome == "created" {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(json!(pushed))).into_response())
}

async fn push_note(
    State(app): Shared,
    Path(patient): Path<String>,
    Query(q): Query<WriteQuery>,
    b: std::result::Result<Json<Value>, JsonRejection>,
) -> OpResult<Response> {
    push(app, patient, "DocumentReference", q, b).await
}

async fn push_lab(
    State(app): Shared,
    Path(patient): Path<String>,
    Query(q): Query<WriteQuery>,
    b: std::result::Result<Json<Value>, JsonRejection>,
) -> OpResult<Response> {
    push(app, patient, "Observation", q, b).await
}

async fn push_appointment(
    State(app): Shared,
    Path(patient): Path<String>,
    Query(q): Query<WriteQuery>,
    b: std::result::Result<Json<Value>, JsonRejection>,
) -> OpResult<Response> {
    push(app, patient, "Appointment", q, b).await
}

async fn push_form(
    State(app): Shared,
    Path(patient): Path<String>,
    Query(q): Query<WriteQuery>,
    b: std::result::Result<Json<Value>, JsonRejection>,
) -> OpResult<Response> {
    push(app, patient, "Questionnaire", q, b).await
}

async fn push_message(
    State(app): Shared,
    Path(patient): Path<String>,
    Query(q): Query<WriteQuery>,
    b: std::result::Result<Json<Value>, JsonRejection>,
) -> OpResult<Response> {
    push(app, patient, "Communication", q, b).await
}

async fn update_appointment(
    State(app): Shared,
    Path((patient, id)): Path<(String, String)>,
    Query(q): Query<WriteQuery>,
    b: std::result::Result<Json<Value>, JsonRejection>,
) -> OpResult<Json<Value>> {
    let res = body(b)?;
    let clinic = app.clinic.clone();
    let done = blocking(move || ops::update_appointment(&clinic, &patient, &id, &res, q.clinician.as_deref())).await?;
    Ok(Json(json!(done)))
}

async fn appointment_action(
    State(app): Shared,
    Path((patient, id, action)): Path<(String, String, String)>,
    Query(q): Query<WriteQuery>,
) -> OpResult<Json<Value>> {
    let status = match action.as_str() {
        "confirm" => "confirmed",
        "cancel" => "cancelled",
        "complete" => "completed",
        other => {
            return Err(OpError::new(
                404,
                format!("`{other}` is not an appointment action: use confirm, cancel or complete"),
            ));
        }
    };
    let clinic = app.clinic.clone();
    let done =
        blocking(move || ops::set_appointment_status(&clinic, &patient, &id, status, q.clinician.as_deref())).await?;
    Ok(Json(json!(done)))
}

/// The query of the routes that list (public so tests/openapi.rs can list its fields).
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    /// Only entries with this status.
    status: Option<String>,
}

async fn list_appointments(
    State(app): Shared,
    Path(patient): Path<String>,
    Query(q): Query<ListQuery>,
) -> OpResult<Json<Value>> {
    let clinic = app.clinic.clone();
    let all = blocking(move || ops::appointments(&clinic, &patient, q.status.as_deref())).await?;
    Ok(Json(fhir::searchset(all)))
}

async fn list_messages(State(app): Shared, Path(patient): Path<String>) -> OpResult<Json<Value>> {
    let clinic = app.clinic.clone();
    let all = blocking(move || ops::messages(&clinic, &patient)).await?;
    Ok(Json(fhir::searchset(all)))
}

async fn list_forms(
    State(app): Shared,
    Path(patient): Path<String>,
    Query(q): Query<ListQuery>,
) -> OpResult<Json<Value>> {
    let completed = match q.status.as_deref() {
        None => false,
        Some("completed") => true,
        Some(other) => {
            return Err(OpError::new(
                422,
                format!("`{other}` is not a form filter: use status=completed, or nothing for every form"),
            ));
        }
    };
    let clinic = app.clinic.clone();
    let all = blocking(move || ops::forms(&clinic, &patient, completed)).await?;
    Ok(Json(fhir::searchset(all)))
}
