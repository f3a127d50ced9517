//! docs/openapi.json against the routes node/src/api.rs really registers, so the two cannot
//! drift: every `.route("…", …)` in `router()` with its methods is in the spec and nothing else
//! is; open and guarded routes are marked so; path, query and body parameters match what each
//! handler extracts; and every status a handler can produce by itself is documented.
//!
//! The Rust source is read as text (the node is a binary crate, so its router cannot be
//! called from here); string literals and comments are blanked out before looking for
//! brackets, so a `{patient}` inside a path or a `(` in a message does not confuse the scan.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

const API_SRC: &str = include_str!("../node/src/api.rs");
const SPEC: &str = include_str!("../docs/openapi.json");

/// The HTTP methods axum's `routing` module offers as functions and `MethodRouter` methods.
const METHODS: &[&str] = &["get", "post", "put", "delete", "patch", "head", "options", "trace"];

// ---------------------------------------------------------------------------------------------
// Reading the router out of the source
// ---------------------------------------------------------------------------------------------

/// The source with the insides of string literals, char literals and comments replaced by
/// spaces, byte for byte, so offsets into it are offsets into the original.
fn mask(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = b.to_vec();
    let blank = |out: &mut Vec<u8>, from: usize, to: usize| {
        for x in &mut out[from..to.min(b.len())] {
            if *x != b'\n' {
                *x = b' ';
            }
        }
    };
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                let end = src[i..].find('\n').map_or(b.len(), |n| i + n);
                blank(&mut out, i, end);
                i = end;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let end = src[i + 2..].find("*/").map_or(b.len(), |n| i + 2 + n + 2);
                blank(&mut out, i, end);
                i = end;
            }
            b'r' if (b.get(i + 1) == Some(&b'"') || b.get(i + 1) == Some(&b'#')) && (i == 0 || !is_ident(b[i - 1])) => {
                // Raw string: r"…" or r#"…"#.
                let hashes = b[i + 1..].iter().take_while(|c| **c == b'#').count();
                if b.get(i + 1 + hashes) != Some(&b'"') {
                    i += 1;
                    continue;
                }
                let open = i + 1 + hashes;
                let close = format!("\"{}", "#".repeat(hashes));
                let end = src[open + 1..].find(&close).map_or(b.len(), |n| open + 1 + n);
                blank(&mut out, open + 1, end);
                i = end + close.len();
            }
            b'"' => {
                let mut j = i + 1;
                while j < b.len() && b[j] != b'"' {
                    j += if b[j] == b'\\' { 2 } else { 1 };
                }
                blank(&mut out, i + 1, j);
                i = j + 1;
            }
            b'\'' => {
                // A char literal ('x', '\n', '—'), or else a lifetime ('static), left alone.
                if b.get(i + 1) == Some(&b'\\') {
                    let end = src[i + 2..].find('\'').map_or(b.len(), |n| i + 2 + n);
                    blank(&mut out, i + 1, end);
                    i = end + 1;
                } else if let Some(c) = src[i + 1..].chars().next()
                    && b.get(i + 1 + c.len_utf8()) == Some(&b'\'')
                {
                    blank(&mut out, i + 1, i + 1 + c.len_utf8());
                    i += 2 + c.len_utf8();
                } else {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    String::from_utf8(out).expect("masking keeps the text UTF-8")
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Index just past the bracket matching the one at `open` (in masked text).
fn matching(masked: &str, open: usize) -> usize {
    let b = masked.as_bytes();
    let (o, c) = (b[open], closing(b[open]));
    let mut depth = 0;
    for (i, x) in b.iter().enumerate().skip(open) {
        if *x == o {
            depth += 1;
        } else if *x == c {
            depth -= 1;
            if depth == 0 {
                return i + 1;
            }
        }
    }
    panic!("unbalanced `{}` at byte {open} of node/src/api.rs", o as char);
}

fn closing(open: u8) -> u8 {
    match open {
        b'(' => b')',
        b'{' => b'}',
        b'[' => b']',
        other => panic!("`{}` is not a bracket", other as char),
    }
}

/// Identifiers immediately followed by `(` (calls), with the offset just past the `(`.
fn calls(masked: &str) -> Vec<(&str, usize)> {
    let b = masked.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if is_ident(b[i]) && (i == 0 || !is_ident(b[i - 1])) {
            let start = i;
            while i < b.len() && is_ident(b[i]) {
                i += 1;
            }
            let mut j = i;
            while j < b.len() && b[j].is_ascii_whitespace() {
                j += 1;
            }
            if b.get(j) == Some(&b'(') && !b[start].is_ascii_digit() {
                out.push((&masked[start..i], j + 1));
            }
        } else {
            i += 1;
        }
    }
    out
}

/// A function defined in the source: its signature and its body (both masked).
struct Function {
    signature: String,
    body: String,
}

fn functions(masked: &str) -> BTreeMap<String, Function> {
    let b = masked.as_bytes();
    let mut out = BTreeMap::new();
    let mut from = 0;
    while let Some(n) = masked[from..].find("fn ") {
        let at = from + n;
        from = at + 3;
        if at > 0 && is_ident(b[at - 1]) {
            continue;
        }
        let name: String = masked[at + 3..]
            .bytes()
            .take_while(|c| is_ident(*c))
            .map(char::from)
            .collect();
        if name.is_empty() {
            continue;
        }
        // The body is the first `{` outside the parameter list's brackets.
        let mut i = at + 3 + name.len();
        let mut depth = 0i32;
        while i < b.len() {
            match b[i] {
                b'(' | b'[' => depth += 1,
                b')' | b']' => depth -= 1,
                b'{' if depth == 0 => break,
                b';' if depth == 0 => break, // a declaration without a body
                _ => {}
            }
            i += 1;
        }
        if b.get(i) != Some(&b'{') {
            continue;
        }
        let end = matching(masked, i);
        out.insert(
            name,
            Function {
                signature: masked[at..i].to_string(),
                body: masked[i..end].to_string(),
            },
        );
        from = end;
    }
    out
}

/// The parameter list of a (masked) signature, without its parentheses.
fn parameters_of(signature: &str) -> &str {
    let open = signature.find('(').expect("a signature has parameters");
    &signature[open + 1..matching(signature, open) - 1]
}

/// Field names of `struct NAME { … }` in the source.
fn struct_fields(masked: &str, name: &str) -> BTreeSet<String> {
    let at = masked
        .find(&format!("struct {name} "))
        .unwrap_or_else(|| panic!("no `struct {name}` in node/src/api.rs"));
    let open = at + masked[at..].find('{').expect("a struct body");
    let body = &masked[open + 1..matching(masked, open) - 1];
    // `#[…]` attributes hold no fields.
    let mut plain = body.to_string();
    while let Some(a) = plain.find("#[") {
        let end = matching(&plain, a + 1);
        plain.replace_range(a..end, &" ".repeat(end - a));
    }
    let b = plain.as_bytes();
    let mut out = BTreeSet::new();
    let mut depth = 0i32;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'<' | b'(' | b'[' | b'{' => depth += 1,
            b'>' | b')' | b']' | b'}' => depth -= 1,
            c if depth == 0 && is_ident(c) && (i == 0 || !is_ident(b[i - 1])) => {
                let start = i;
                while i < b.len() && is_ident(b[i]) {
                    i += 1;
                }
                let word = &plain[start..i];
                let rest = plain[i..].trim_start();
                if word != "pub" && rest.starts_with(':') && !rest.starts_with("::") {
                    out.insert(word.to_string());
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// One route as the source registers it.
#[derive(Debug)]
struct Route {
    path: String,
    method: String,
    handler: String,
    /// Outside the bearer-token layer.
    open: bool,
}

fn routes() -> Vec<Route> {
    let masked = mask(API_SRC);
    let router = masked.find("fn router(").expect("node/src/api.rs has `fn router(`");
    let open_brace = router + masked[router..].find('{').expect("router() has a body");
    let body_end = matching(&masked, open_brace);
    let guarded_from = open_brace
        + masked[open_brace..body_end]
            .find("let guarded")
            .expect("router() builds a `guarded` router");
    assert!(
        masked[guarded_from..body_end].contains("authorize"),
        "the guarded routes are behind `authorize`"
    );
    let mut out = Vec::new();
    let mut from = open_brace;
    while let Some(n) = masked[from..body_end].find(".route(") {
        let paren = from + n + ".route".len();
        let end = matching(&masked, paren);
        let args = &masked[paren + 1..end - 1];
        let q1 = args.find('"').expect("a route's first argument is a string literal");
        let q2 = q1 + 1 + args[q1 + 1..].find('"').expect("the path literal closes");
        let path = API_SRC[paren + 1 + q1 + 1..paren + 1 + q2].to_string();
        let rest = &args[q2 + 1..];
        let mut found = false;
        for (name, after) in calls(rest) {
            if !METHODS.contains(&name) {
                continue;
            }
            let handler: String = rest[after..]
                .trim_start()
                .bytes()
                .take_while(|c| is_ident(*c))
                .map(char::from)
                .collect();
            out.push(Route {
                path: path.clone(),
                method: name.to_string(),
                handler,
                open: paren < guarded_from,
            });
            found = true;
        }
        assert!(found, "no method found for route {path}");
        from = end;
    }
    out
}

/// HTTP statuses a function can answer by itself or through the functions of api.rs it calls:
/// `StatusCode::CREATED`/`OK` and `OpError::new(NNN, …)`.
fn statuses(fns: &BTreeMap<String, Function>, start: &str) -> BTreeSet<u16> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![start.to_string()];
    let mut out = BTreeSet::new();
    while let Some(name) = todo.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        let Some(f) = fns.get(&name) else { continue };
        if f.body.contains("StatusCode::CREATED") {
            out.insert(201);
        }
        if f.body.contains("StatusCode::OK") {
            out.insert(200);
        }
        for (callee, after) in calls(&f.body) {
            if callee == "new"
                && f.body[..after]
                    .trim_end_matches('(')
                    .trim_end()
                    .ends_with("OpError::new")
            {
                let code: String = f.body[after..]
                    .trim_start()
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                out.insert(code.parse().expect("OpError::new takes a literal status"));
            } else if fns.contains_key(callee) {
                todo.push(callee.to_string());
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Reading the spec
// ---------------------------------------------------------------------------------------------

fn spec() -> Value {
    serde_json::from_str(SPEC).expect("docs/openapi.json is valid JSON (the node serves it with include_str!)")
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

#[test]
fn the_source_is_read_as_expected() {
    let all = routes();
    assert!(all.len() >= 10, "found only {} routes: {all:?}", all.len());
    assert!(
        all.iter()
            .any(|r| r.path == "/health" && r.method == "get" && r.open && r.handler == "health")
    );
    assert!(
        all.iter()
            .any(|r| r.path == "/v1/patients/{patient}/appointments" && r.method == "get" && !r.open)
    );
    let text = "let s = \"a { ( \\\" }\"; // )\nlet c = '{'; fn f<'a>(x: &'a str) { g(x) }";
    let masked = mask(text);
    assert_eq!(masked.len(), text.len());
    let f = &functions(&masked)["f"];
    assert_eq!(f.body, "{ g(x) }");
    assert_eq!(parameters_of(&f.signature), "x: &'a str");
    assert_eq!(
        struct_fields(&mask(API_SRC), "WriteQuery"),
        BTreeSet::from(["clinician".to_string()])
    );
}

#[test]
fn every_route_in_the_router_is_in_the_spec_with_the_same_methods_and_nothing_else_is() {
    let doc = spec();
    let in_source: BTreeSet<(String, String)> = routes().into_iter().map(|r| (r.path, r.method)).collect();
    let in_spec: BTreeSet<(String, String)> = operations(&doc).into_keys().collect();
    let missing: Vec<_> = in_source.difference(&in_spec).collect();
    let extra: Vec<_> = in_spec.difference(&in_source).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "docs/openapi.json and node/src/api.rs disagree.\n  registered but not documented: {missing:?}\n  documented but not registered: {extra:?}"
    );
}

#[test]
fn open_routes_need_no_token_and_every_other_route_needs_the_bearer_token() {
    let doc = spec();
    let ops = operations(&doc);
    for r in routes() {
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

#[test]
fn parameters_and_bodies_match_what_each_handler_extracts() {
    let doc = spec();
    let ops = operations(&doc);
    let masked = mask(API_SRC);
    let fns = functions(&masked);
    for r in routes() {
        let at = format!("{} {}", r.method.to_uppercase(), r.path);
        let Some((op, params)) = ops.get(&(r.path.clone(), r.method.clone())) else {
            continue;
        };
        let f = fns
            .get(&r.handler)
            .unwrap_or_else(|| panic!("{at}: no handler `{}` in node/src/api.rs", r.handler));

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

        // Query parameters: the fields of the handler's `Query<T>`.
        let takes = parameters_of(&f.signature);
        let expected: BTreeSet<String> = match takes.find("Query<") {
            Some(q) => {
                let ty: String = takes[q + "Query<".len()..]
                    .bytes()
                    .take_while(|c| is_ident(*c))
                    .map(char::from)
                    .collect();
                struct_fields(&masked, &ty)
            }
            None => BTreeSet::new(),
        };
        let documented: BTreeSet<String> = params_in(params, "query").into_iter().map(str::to_string).collect();
        assert_eq!(documented, expected, "{at}: query parameters");

        // A request body exactly when the handler reads one.
        let reads_body = takes.contains("Json<");
        assert_eq!(
            op.get("requestBody").is_some(),
            reads_body,
            "{at}: the handler {} a JSON body",
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

#[test]
fn every_status_a_handler_produces_is_documented_with_an_operation_outcome() {
    let doc = spec();
    let ops = operations(&doc);
    let masked = mask(API_SRC);
    let fns = functions(&masked);
    let auth = statuses(&fns, "authorize");
    assert!(auth.contains(&401), "authorize answers 401");
    // Every route, open or guarded, is behind the Host check.
    let host = statuses(&fns, "check_host");
    assert!(host.contains(&421), "check_host answers 421");
    assert!(
        API_SRC.contains(".layer(middleware::from_fn_with_state(app.clone(), check_host))"),
        "check_host is a layer over every route"
    );
    for r in routes() {
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

        let mut produced = statuses(&fns, &r.handler);
        produced.extend(&host);
        if !r.open {
            produced.extend(&auth);
        }
        let success: BTreeSet<u16> = produced.iter().copied().filter(|s| *s < 300).collect();
        let success = if success.is_empty() {
            BTreeSet::from([200])
        } else {
            success
        };
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
