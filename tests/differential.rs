//! What the upstream gets is what tollgate judged: every request of a corpus of hostile
//! requests ([`tests/differential/corpus.txt`](differential/corpus.txt)) is sent byte for
//! byte through each real gateway (nginx, Traefik, Caddy, each with its shipped files, see
//! `tests/e2e/gateways.rs`) to the echo upstream, with tollgate deciding; every request the
//! upstream receives is compared with what tollgate's `check judged` debug line says it
//! decided on. Any difference is a failure.
//!
//! # How
//!
//! One stack per gateway, the three in parallel: the gateway, the real `tollgate` binary
//! with `[log] format = "json"` and `level = "tollgate=debug"` (so each check prints one
//! `check judged` line with `method`, `overrides`, `host`, `path`, `routes`, `outcome`), and
//! the echo upstream, which records every request it receives. The entries go one at a
//! time, each on its own connection with `Authorization: Bearer <token>`,
//! `X-Differential-Entry: <index>` and `Connection: close` added after its own headers; the
//! token holds every scope the test routes require (`tests/e2e`'s `tollgate_config`), so a
//! request the gateway forwards is allowed and reaches the upstream. The next entry starts
//! only once the gateway has answered and closed the connection, so the `check judged` lines
//! printed in between belong to the entry (a check always ends before the gateway answers).
//! An upstream request belongs to the entry its `X-Differential-Entry` names, even when it
//! arrives after the gateway answered; one without the header (a request smuggled inside
//! another) belongs to the entry being sent when it arrived, or, arriving late, to a later
//! one, where it fails all the same.
//!
//! # The comparison
//!
//! Every request the upstream received during an entry must match one `check judged` line
//! of that entry with `outcome` `allow` (a gateway may retry an idempotent request, so two
//! upstream requests may match the same line; a request smuggled past the gateway's check
//! matches none). Writing `J` for the judged line and `M(J)` for the methods its readings
//! cover, `{J.method} ∪ J.overrides`, plus GET when HEAD is among them (the readings of
//! `src/policy/readings.rs`), the upstream request matches `J` when:
//!
//! 1. **Method**: the upstream's method (case-sensitive) is in `M(J)`.
//! 2. **Overrides**: every method override the upstream could act on is in `M(J)`: each
//!    comma-separated value (trimmed, non-empty, upper-cased) of `X-HTTP-Method-Override`,
//!    `X-HTTP-Method`, `X-Method-Override`, or of a header a CGI-style backend reads as one
//!    of them (`X_HTTP_Method_Override`: every character but letters and digits folds to
//!    `_`), and each `_method` value in its query (`&` and `;` separate parameters, names and
//!    values form-decoded, values trimmed, upper-cased, empty ones ignored).
//! 3. **Host**: it received exactly one `Host`, and that value, lower-cased, without its
//!    port and without one trailing dot, equals `J.host`.
//! 4. **Path**: the path of its request target (before `?` or `#`; the authority of an
//!    absolute-form target dropped), normalized by `tollgate::uri::normalize_path`
//!    (unreserved escapes decoded, dot segments removed, `//` merged), is accepted by that
//!    function (a target that is no path, CONNECT's authority or `*`, never is) and equals
//!    `J.path`, or equals, ignoring ASCII case, `J.path` or `J.path` without a format
//!    suffix on its last segment: the readings of `path_matching = "strict"` (the default,
//!    which these tests run) held the request to those too.
//!
//! Not compared: the scheme (plain http throughout), the `X-Forwarded-*` headers the
//! upstream gets (an API routing on them is outside what tollgate promises), the rest of
//! the query, the body. A request the gateway refuses itself (400, 414, …) or tollgate
//! refuses never reaches the upstream and passes whatever was judged. The upstream is axum on hyper: a request
//! hyper itself refuses reaches no handler and counts as not received, as it would for an
//! API built on it.
//!
//! Each failure names the entry (and its line in the corpus), the gateway, the answer at
//! the client, what the upstream received and every check tollgate judged for the entry;
//! all failures of a gateway are collected and reported at once. An entry marked
//! `known: <gateway> …` is a finding not fixed yet: it still fails, labelled as known, and
//! the mark itself fails once the finding no longer reproduces. An entry marked
//! `expect: upstream` must reach the upstream through every gateway, so the corpus can never
//! silently become a list of refusals.
//!
//! The corpus format is described at the top of `corpus.txt`. To see what every entry did
//! at every gateway: `DIFFERENTIAL_REPORT=1 cargo test --test differential -- --nocapture`.

mod e2e;
mod support;

use std::time::Duration;

use e2e::gateways::{caddy::Caddy, nginx::Nginx, traefik::Traefik};
use e2e::{Gateway, Options, Seen, Stack};
use serde_json::Value;

const CORPUS: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/differential/corpus.txt"));

/// tollgate prints what each check was judged on, one JSON object per line.
const JSON_DEBUG_LOG: &str = "[log]\nformat = \"json\"\nlevel = \"tollgate=debug\"\n";

/// Every scope a route of `tests/e2e`'s tollgate config requires.
const ALL_SCOPES: &str = "read admin write:admin read:reports delete:orders";

/// How long a gateway may take to answer one entry and close the connection.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// How long to wait after a timed-out entry, and after the last entry, for anything the
/// gateway still sends the upstream.
const SETTLE: Duration = Duration::from_millis(300);

/// The headers that name a method override (src/gateway.rs reads the same).
const OVERRIDE_HEADERS: [&str; 3] = ["x-http-method-override", "x-http-method", "x-method-override"];

// ---------------------------------------------------------------------------------------
// The corpus.

/// One entry of the corpus, as written (escapes and placeholders not yet replaced).
#[derive(Debug, Clone)]
struct Entry {
    name: String,
    /// The corpus line of its `===` header.
    line: usize,
    /// `known: <gateway> <text>`: findings not fixed yet, by gateway.
    known: Vec<(String, String)>,
    /// `expect: upstream`: it must reach the upstream through every gateway.
    expect_upstream: bool,
    /// Request line and header lines.
    head: Vec<String>,
    /// Body lines, concatenated as written (line ends only where escaped).
    body: String,
}

fn parse_corpus(text: &str) -> Result<Vec<Entry>, String> {
    let mut entries: Vec<Entry> = Vec::new();
    // Within the current entry: still reading attributes, and whether the blank line
    // that starts the body was seen.
    let (mut in_attributes, mut in_body) = (false, false);
    for (index, raw) in text.lines().enumerate() {
        let number = index + 1;
        if raw.starts_with('#') {
            continue;
        }
        if let Some(name) = raw.strip_prefix("=== ") {
            let name = name.trim();
            if name.is_empty() || name.contains(char::is_whitespace) {
                return Err(format!("line {number}: an entry's name is one word: {raw:?}"));
            }
            if entries.iter().any(|e| e.name == name) {
                return Err(format!("line {number}: entry {name} is named twice"));
            }
            entries.push(Entry {
                name: name.to_string(),
                line: number,
                known: Vec::new(),
                expect_upstream: false,
                head: Vec::new(),
                body: String::new(),
            });
            (in_attributes, in_body) = (true, false);
            continue;
        }
        let Some(entry) = entries.last_mut() else {
            if raw.trim().is_empty() {
                continue;
            }
            return Err(format!("line {number}: text before the first `=== name`: {raw:?}"));
        };
        if in_attributes {
            if let Some(known) = raw.strip_prefix("known: ") {
                let (gateway, text) = known.split_once(' ').unwrap_or((known, ""));
                if !["nginx", "traefik", "caddy"].contains(&gateway) {
                    return Err(format!("line {number}: `known:` names a gateway first: {raw:?}"));
                }
                entry.known.push((gateway.to_string(), text.trim().to_string()));
                continue;
            }
            if raw == "expect: upstream" {
                entry.expect_upstream = true;
                continue;
            }
            in_attributes = false;
        }
        if in_body {
            entry.body.push_str(raw);
        } else if raw.is_empty() {
            in_body = true;
        } else {
            entry.head.push(raw.to_string());
        }
    }
    if let Some(empty) = entries.iter().find(|e| e.head.is_empty()) {
        return Err(format!("line {}: entry {} has no request line", empty.line, empty.name));
    }
    Ok(entries)
}

/// The values the placeholders of an entry stand for at one gateway.
struct Placeholders {
    /// The gateway's listening port: `{port}`.
    port: u16,
    /// The body's length in bytes: `{body-length}`.
    body_length: usize,
}

/// The bytes of `text`: `\r`, `\n`, `\t`, `\0`, `\\`, `\xHH` escapes; `{port}`,
/// `{body-length}` and `{repeat N TEXT}` (TEXT N times) placeholders.
fn unescape(text: &str, values: &Placeholders) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len());
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        match c {
            '\\' => {
                let (bytes, len): (Vec<u8>, usize) = match rest.as_bytes().get(1) {
                    Some(b'r') => (vec![b'\r'], 2),
                    Some(b'n') => (vec![b'\n'], 2),
                    Some(b't') => (vec![b'\t'], 2),
                    Some(b'0') => (vec![0], 2),
                    Some(b'\\') => (vec![b'\\'], 2),
                    Some(b'x') => {
                        let hex = rest.get(2..4).ok_or_else(|| format!("short \\x escape in {text:?}"))?;
                        let byte = u8::from_str_radix(hex, 16).map_err(|_| format!("bad \\x escape in {text:?}"))?;
                        (vec![byte], 4)
                    }
                    _ => return Err(format!("unknown escape in {text:?}")),
                };
                out.extend(bytes);
                rest = &rest[len..];
            }
            '{' => {
                let end = rest.find('}').ok_or_else(|| format!("unclosed {{ in {text:?}"))?;
                let inner = &rest[1..end];
                match inner.split_once(' ') {
                    _ if inner == "port" => out.extend(values.port.to_string().bytes()),
                    _ if inner == "body-length" => out.extend(values.body_length.to_string().bytes()),
                    Some(("repeat", spec)) => {
                        let (count, unit) = spec.split_once(' ').ok_or_else(|| format!("bad repeat in {text:?}"))?;
                        let count: usize = count.parse().map_err(|_| format!("bad repeat count in {text:?}"))?;
                        out.extend(unescape(unit, values)?.repeat(count));
                    }
                    _ => return Err(format!("unknown placeholder {{{inner}}} in {text:?}")),
                }
                rest = &rest[end + 1..];
            }
            c => {
                let mut buf = [0; 4];
                out.extend(c.encode_utf8(&mut buf).bytes());
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    Ok(out)
}

/// The bytes sent for `entry` (the `index`th): its head lines each ended by CRLF, the
/// added headers, the blank line, the body.
fn render(entry: &Entry, port: u16, authorization: &str, index: usize) -> Result<Vec<u8>, String> {
    let mut values = Placeholders { port, body_length: 0 };
    let body = unescape(&entry.body, &values)?;
    values.body_length = body.len();
    let mut out = Vec::new();
    for line in &entry.head {
        out.extend(unescape(line, &values)?);
        out.extend(b"\r\n");
    }
    let added = format!("Authorization: {authorization}\r\n{ENTRY_HEADER}: {index}\r\nConnection: close\r\n\r\n");
    out.extend(added.bytes());
    out.extend(body);
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// What tollgate judged, and what the upstream received.

/// One `check judged` line of tollgate's JSON log.
#[derive(Debug, Clone, PartialEq)]
struct Judged {
    method: String,
    overrides: Vec<String>,
    host: String,
    path: String,
    routes: String,
    outcome: String,
}

impl Judged {
    /// `M(J)`: the method, the overrides, and GET when HEAD is among them.
    fn methods(&self) -> Vec<&str> {
        let mut methods: Vec<&str> =
            std::iter::once(self.method.as_str()).chain(self.overrides.iter().map(String::as_str)).collect();
        if methods.contains(&"HEAD") {
            methods.push("GET");
        }
        methods
    }
}

/// Every `check judged` line (and `check judged on no request`, whose request could not be
/// rebuilt) in tollgate's output, in order.
fn judged_lines(output: &str) -> Vec<Judged> {
    let mut all = Vec::new();
    for line in output.lines() {
        let Ok(json) = serde_json::from_str::<Value>(line) else { continue };
        let fields = &json["fields"];
        let message = fields["message"].as_str().unwrap_or_default();
        if !message.starts_with("check judged") {
            continue;
        }
        let text = |name: &str| fields[name].as_str().unwrap_or_default().to_string();
        let overrides = text("overrides");
        all.push(Judged {
            method: text("method"),
            overrides: overrides.split(',').filter(|o| !o.is_empty()).map(str::to_string).collect(),
            host: text("host"),
            path: text("path"),
            routes: text("routes"),
            outcome: text("outcome"),
        });
    }
    all
}

/// The upstream's view of one request, read as the comparison rule says.
#[derive(Debug)]
struct Arrived {
    method: String,
    hosts: Vec<String>,
    /// Path and query as received.
    target: String,
    overrides: Vec<String>,
}

impl Arrived {
    fn from(seen: &Seen) -> Arrived {
        let hosts = seen.headers.get("host").cloned().unwrap_or_default();
        let mut overrides = Vec::new();
        let fold = |name: &str| -> String {
            name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect()
        };
        for (name, values) in &seen.headers {
            if OVERRIDE_HEADERS.iter().any(|o| fold(o) == fold(name)) {
                for value in values {
                    overrides
                        .extend(value.split(',').map(str::trim).filter(|v| !v.is_empty()).map(str::to_ascii_uppercase));
                }
            }
        }
        overrides.extend(
            query_values(&seen.uri, "_method").iter().map(|v| v.trim().to_ascii_uppercase()).filter(|v| !v.is_empty()),
        );
        Arrived { method: seen.method.clone(), hosts, target: seen.uri.clone(), overrides }
    }

    /// The path of the request target: before `?` or `#`, without the scheme and authority
    /// of an absolute-form target. Any other target (`*`, an authority) is returned whole.
    fn path(&self) -> &str {
        let target = self.target.split(['?', '#']).next().unwrap_or_default();
        match target.split_once("://") {
            Some((_, rest)) if !target.starts_with('/') => rest.find('/').map_or("/", |i| &rest[i..]),
            _ => target,
        }
    }
}

/// The host as gateways route on it: lower case, no port, one trailing dot removed.
fn routed_host(host: &str) -> String {
    let lower = host.to_ascii_lowercase();
    let without_port = match lower.rfind(':') {
        Some(i) if !lower[i..].contains(']') => &lower[..i],
        _ => &lower[..],
    };
    without_port.strip_suffix('.').unwrap_or(without_port).to_string()
}

/// Every value of the query parameter `name` in `uri`: `&` and `;` separate parameters,
/// names and values are form-decoded (`%XX`, `+` as space) by the `url` crate's parser.
fn query_values(uri: &str, name: &str) -> Vec<String> {
    let Some((_, query)) = uri.split('#').next().unwrap_or_default().split_once('?') else { return Vec::new() };
    query
        .split(';')
        .flat_map(|part| url::form_urlencoded::parse(part.as_bytes()))
        .filter(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
        .collect()
}

/// The path with each possible format suffix of its last segment removed (as
/// src/policy/readings.rs reads it): `/a/r.tar.gz` gives `/a/r.tar` and `/a/r`.
fn format_stems(path: &str) -> Vec<&str> {
    let start = path.rfind('/').map_or(0, |i| i + 1);
    path[start..].match_indices('.').filter(|&(i, _)| i > 0).map(|(i, _)| &path[..start + i]).collect()
}

/// How the request the upstream received differs from what `judged` says was decided on;
/// empty when it matches (the module's comparison rule).
fn differences(arrived: &Arrived, judged: &Judged) -> Vec<String> {
    let mut differences = Vec::new();
    if judged.outcome != "allow" {
        differences.push(format!("the check was not allowed ({})", judged.outcome));
    }
    let methods = judged.methods();
    if !methods.contains(&arrived.method.as_str()) {
        differences.push(format!("method {:?} is not among the judged {methods:?}", short(&arrived.method)));
    }
    for o in &arrived.overrides {
        if !methods.contains(&o.as_str()) {
            differences.push(format!("override {o:?} at the upstream is not among the judged {methods:?}"));
        }
    }
    match arrived.hosts.as_slice() {
        [host] if routed_host(host) == judged.host => {}
        [host] => differences.push(format!(
            "host {:?} (routed {:?}) is not the judged {:?}",
            short(host),
            short(&routed_host(host)),
            short(&judged.host)
        )),
        hosts => differences.push(format!("{} Host headers, judged {:?}", hosts.len(), short(&judged.host))),
    }
    match tollgate::uri::normalize_path(arrived.path()) {
        Ok(path) => {
            let readings = std::iter::once(judged.path.as_str()).chain(format_stems(&judged.path));
            if path != judged.path && !readings.into_iter().any(|p| p.eq_ignore_ascii_case(&path)) {
                differences.push(format!(
                    "path {:?} (normalized {:?}) is not the judged {:?}",
                    short(arrived.path()),
                    short(&path),
                    short(&judged.path)
                ));
            }
        }
        Err(reason) => differences.push(format!(
            "path {:?} does not normalize ({reason:?}); judged {:?}",
            short(arrived.path()),
            short(&judged.path)
        )),
    }
    differences
}

// ---------------------------------------------------------------------------------------
// Sending an entry.

/// The client's side of one exchange.
#[derive(Debug)]
struct Answer {
    /// The status line, or what came instead.
    first_line: String,
    timed_out: bool,
}

impl Answer {
    fn summary(&self) -> String {
        let mut text = if self.first_line.is_empty() { "no answer".to_string() } else { self.first_line.clone() };
        if self.timed_out {
            text.push_str(" (timed out)");
        }
        text
    }
}

/// Writes `request` on a new connection to `addr` and reads until the gateway closes it.
async fn exchange(addr: &str, request: &[u8]) -> Answer {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect to the gateway");
    // A gateway may answer and close before it read everything (400 on the first bad line).
    let _ = stream.write_all(request).await;
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    let read = tokio::time::timeout(ANSWER_TIMEOUT, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => raw.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    let text = String::from_utf8_lossy(&raw);
    let first_line = text.lines().next().unwrap_or_default().chars().take(120).collect();
    Answer { first_line, timed_out: read.is_err() }
}

/// One entry's outcome at one gateway.
struct Outcome {
    answer: Answer,
    judged: Vec<Judged>,
    arrived: Vec<Seen>,
}

impl Outcome {
    fn describe(&self) -> String {
        let mut text = format!("  client got: {}\n", self.answer.summary());
        if self.arrived.is_empty() {
            text.push_str("  upstream received: nothing\n");
        }
        for seen in &self.arrived {
            let arrived = Arrived::from(seen);
            let hosts: Vec<String> = arrived.hosts.iter().map(|h| short(h)).collect();
            text.push_str(&format!(
                "  upstream received: {} {} Host {hosts:?} overrides {:?}\n",
                short(&arrived.method),
                short(&arrived.target),
                arrived.overrides
            ));
        }
        if self.judged.is_empty() {
            text.push_str("  tollgate judged: nothing\n");
        }
        for judged in &self.judged {
            text.push_str(&format!(
                "  tollgate judged: method {:?} overrides {:?} host {:?} path {:?} routes {:?} -> {}\n",
                short(&judged.method),
                judged.overrides,
                short(&judged.host),
                short(&judged.path),
                judged.routes,
                judged.outcome
            ));
        }
        text
    }

    /// The module's rule: every request the upstream received matches an allowed check.
    fn mismatches(&self) -> Vec<String> {
        let mut found = Vec::new();
        for seen in &self.arrived {
            let arrived = Arrived::from(seen);
            let all: Vec<Vec<String>> = self.judged.iter().map(|j| differences(&arrived, j)).collect();
            if all.iter().any(Vec::is_empty) {
                continue;
            }
            if all.is_empty() {
                found.push(format!(
                    "{} {} reached the upstream with no check judged",
                    arrived.method,
                    short(&arrived.target)
                ));
            }
            for (judged, differences) in self.judged.iter().zip(all) {
                found.push(format!(
                    "{} {} against the check on {} {:?}: {}",
                    arrived.method,
                    short(&arrived.target),
                    judged.method,
                    short(&judged.path),
                    differences.join("; ")
                ));
            }
        }
        found
    }
}

/// The header the harness adds to each entry's request, with the entry's index: an upstream
/// request carrying it belongs to that entry even when it arrives after the gateway
/// answered (say, a 500 sent while the body was still on its way upstream).
const ENTRY_HEADER: &str = "x-differential-entry";

/// One entry as sent: the client's answer, the checks tollgate judged while it was sent,
/// and how many upstream requests had arrived before it.
struct Sent {
    answer: Answer,
    judged: Vec<Judged>,
    upstream_before: usize,
}

async fn send_entry(stack: &Stack, request: &[u8]) -> Sent {
    let upstream_before = stack.upstream_received().len();
    let judged_before = judged_lines(&stack.tollgate_output()).len();
    let answer = exchange(stack.base.trim_start_matches("http://"), request).await;
    if answer.timed_out {
        tokio::time::sleep(SETTLE).await;
    }
    let judged = judged_lines(&stack.tollgate_output()).split_off(judged_before);
    Sent { answer, judged, upstream_before }
}

/// The upstream requests of each entry: by the entry header they carry, or, for one that
/// carries none (a request smuggled inside another), the entry being sent when it arrived.
fn attribute(received: &[Seen], sent: &[Sent]) -> Vec<Vec<Seen>> {
    let mut arrived = vec![Vec::new(); sent.len()];
    let Some(first) = sent.first().map(|s| s.upstream_before) else { return arrived };
    // Before the first entry: the stack's readiness probes.
    for (index, seen) in received.iter().enumerate().skip(first) {
        let tag = seen.headers.get(ENTRY_HEADER).and_then(|v| v.first()).and_then(|v| v.parse::<usize>().ok());
        let entry = match tag {
            Some(entry) if entry < sent.len() => entry,
            _ => sent.iter().rposition(|s| s.upstream_before <= index).unwrap_or_default(),
        };
        arrived[entry].push(seen.clone());
    }
    arrived
}

/// `text`, or its start and its length when it is too long to read in a report.
fn short(text: &str) -> String {
    const MAX: usize = 160;
    match text.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}… ({} bytes)", &text[..end], text.len()),
        None => text.to_string(),
    }
}

/// Sends the whole corpus through `gateway`; fails once, listing every mismatch.
async fn run_corpus(gateway: &dyn Gateway) {
    let name = gateway.name();
    let entries = parse_corpus(CORPUS).unwrap_or_else(|e| panic!("tests/differential/corpus.txt: {e}"));
    let stack = Stack::start(gateway, Options { extra: JSON_DEBUG_LOG, ..Options::default() }).await;
    let port: u16 = stack.base.rsplit(':').next().and_then(|p| p.parse().ok()).expect("port");
    let authorization = format!("Bearer {}", stack.issuer.token(ALL_SCOPES));
    let mut sent = Vec::with_capacity(entries.len());
    for (index, entry) in entries.iter().enumerate() {
        let request =
            render(entry, port, &authorization, index).unwrap_or_else(|e| panic!("entry {}: {e}", entry.name));
        sent.push(send_entry(&stack, &request).await);
    }
    // Anything the gateway still sends after the last answer.
    tokio::time::sleep(SETTLE).await;
    let arrived = attribute(&stack.upstream_received(), &sent);

    let mut failures = Vec::new();
    let mut report = String::new();
    let (mut reached, mut refused) = (0, 0);
    for ((entry, sent), arrived) in entries.iter().zip(sent).zip(arrived) {
        let outcome = Outcome { answer: sent.answer, judged: sent.judged, arrived };
        let mut mismatches = outcome.mismatches();
        if entry.expect_upstream && outcome.arrived.is_empty() {
            mismatches.push("marked `expect: upstream`, but the upstream received nothing".to_string());
        }
        if outcome.arrived.is_empty() {
            refused += 1;
        } else {
            reached += 1;
        }
        let known: Vec<&str> = entry.known.iter().filter(|(g, _)| g == name).map(|(_, text)| text.as_str()).collect();
        report.push_str(&format!("{} (line {})\n{}", entry.name, entry.line, outcome.describe()));
        let title = format!("entry {} (corpus line {}) through {name}", entry.name, entry.line);
        match (mismatches.is_empty(), known.is_empty()) {
            (true, true) => {}
            (true, false) => failures.push(format!(
                "{title}: marked `known: {name}` ({}) but it matches now: remove the mark\n{}",
                known.join("; "),
                outcome.describe()
            )),
            (false, _) => {
                let label =
                    if known.is_empty() { String::new() } else { format!(" [known finding: {}]", known.join("; ")) };
                failures.push(format!("{title}{label}:\n    {}\n{}", mismatches.join("\n    "), outcome.describe()));
            }
        }
    }
    println!("{name}: {} entries, {reached} reached the upstream, {refused} did not", entries.len());
    if std::env::var_os("DIFFERENTIAL_REPORT").is_some() {
        println!("{report}");
    }
    assert!(
        failures.is_empty(),
        "{name}: {} of {} entries: the upstream got a request other than the one tollgate judged\n\n{}",
        failures.len(),
        entries.len(),
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------------
// The tests.

#[tokio::test]
async fn through_nginx_the_upstream_gets_only_requests_judged_as_they_arrive() {
    run_corpus(&Nginx::new()).await;
}

#[tokio::test]
async fn through_traefik_the_upstream_gets_only_requests_judged_as_they_arrive() {
    run_corpus(&Traefik::new()).await;
}

#[tokio::test]
async fn through_caddy_the_upstream_gets_only_requests_judged_as_they_arrive() {
    run_corpus(&Caddy::new()).await;
}

#[test]
fn the_corpus_parses_and_every_entry_renders() {
    let entries = parse_corpus(CORPUS).unwrap_or_else(|e| panic!("tests/differential/corpus.txt: {e}"));
    assert!(entries.len() >= 100, "{} entries", entries.len());
    assert!(entries.iter().any(|e| e.expect_upstream), "no entry is marked `expect: upstream`");
    for entry in &entries {
        let bytes = render(entry, 8000, "Bearer t", 0).unwrap_or_else(|e| panic!("entry {}: {e}", entry.name));
        assert!(bytes.ends_with(b"Connection: close\r\n\r\n") || !entry.body.is_empty(), "entry {}", entry.name);
    }
}

#[test]
fn entries_render_byte_for_byte() {
    let corpus = "# a comment\n=== one\nknown: caddy a finding\nexpect: upstream\nPOST /x HTTP/1.1\nHost: a:{port}\nContent-Length: {body-length}\nX-Pad: {repeat 3 ab}\\t\\x41\n\nab\\r\\n\n# a comment inside\ncd\n=== two\nGET / HTTP/1.0\n";
    let entries = parse_corpus(corpus).expect("parses");
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].known, [("caddy".to_string(), "a finding".to_string())]);
    assert!(entries[0].expect_upstream && !entries[1].expect_upstream);
    assert_eq!(entries[1].line, 13);
    let bytes = render(&entries[0], 8000, "Bearer t", 7).expect("renders");
    assert_eq!(
        String::from_utf8(bytes).unwrap(),
        "POST /x HTTP/1.1\r\nHost: a:8000\r\nContent-Length: 6\r\nX-Pad: ababab\tA\r\nAuthorization: Bearer t\r\nx-differential-entry: 7\r\nConnection: close\r\n\r\nab\r\ncd"
    );
    for bad in
        ["=== a b\nGET / HTTP/1.1\n", "GET / HTTP/1.1\n", "=== a\nGET / HTTP/1.1\n=== a\nGET / HTTP/1.1\n", "=== a\n"]
    {
        assert!(parse_corpus(bad).is_err(), "{bad:?}");
    }
    let entry = &parse_corpus("=== a\nGET /{nope} HTTP/1.1\n").unwrap()[0];
    assert!(render(entry, 1, "", 0).is_err());
}

fn seen(method: &str, uri: &str, headers: &[(&str, &str)]) -> Seen {
    let mut map = std::collections::BTreeMap::<String, Vec<String>>::new();
    for (name, value) in headers {
        map.entry(name.to_string()).or_default().push(value.to_string());
    }
    Seen { method: method.into(), uri: uri.into(), headers: map, body: String::new() }
}

fn judged(method: &str, overrides: &[&str], host: &str, path: &str) -> Judged {
    Judged {
        method: method.into(),
        overrides: overrides.iter().map(|o| o.to_string()).collect(),
        host: host.into(),
        path: path.into(),
        routes: "token".into(),
        outcome: "allow".into(),
    }
}

fn matches(seen: &Seen, judged: &Judged) -> bool {
    differences(&Arrived::from(seen), judged).is_empty()
}

#[test]
fn the_rule_accepts_what_the_readings_cover() {
    let host = [("host", "Admin.Example.com.:8000")];
    let j = judged("GET", &[], "admin.example.com", "/admin/x");
    assert!(matches(&seen("GET", "/admin/x?y=1", &host), &j));
    assert!(matches(&seen("GET", "/admin/./y/../x", &host), &j), "dot segments");
    assert!(matches(&seen("GET", "//admin//x", &host), &j), "merged slashes");
    assert!(matches(&seen("GET", "/%61dmin/x", &host), &j), "unreserved escape");
    assert!(matches(&seen("GET", "http://other.example/admin/x", &host), &j), "absolute form: the Host decides");
    let url_in_path = judged("GET", &[], "admin.example.com", "/admin/http:/x/y");
    assert!(matches(&seen("GET", "/admin/http://x/y", &host), &url_in_path), "a URL inside a path is a path");
    assert!(matches(&seen("GET", "/ADMIN/X", &host), &j), "case folded");
    let suffixed = judged("GET", &[], "admin.example.com", "/admin/x.json");
    assert!(matches(&seen("GET", "/Admin/X", &host), &suffixed), "format suffix removed");
    let head = judged("HEAD", &[], "admin.example.com", "/admin/x");
    assert!(matches(&seen("HEAD", "/admin/x", &host), &head) && matches(&seen("GET", "/admin/x", &host), &head));
    let overridden = judged("POST", &["DELETE"], "admin.example.com", "/admin/x");
    assert!(matches(&seen("POST", "/admin/x?_method=delete", &host), &overridden));
    assert!(matches(&seen("DELETE", "/admin/x", &host), &overridden));
    let headers = [("host", "admin.example.com"), ("x-http-method-override", " delete , POST")];
    assert!(matches(&seen("POST", "/admin/x", &headers), &overridden));
}

#[test]
fn the_rule_refuses_every_other_difference() {
    let host = [("host", "admin.example.com")];
    let j = judged("GET", &[], "admin.example.com", "/admin/x");
    let other = |method: &str, uri: &str, headers: &[(&str, &str)]| !matches(&seen(method, uri, headers), &j);
    assert!(other("POST", "/admin/x", &host), "method");
    assert!(other("HEAD", "/admin/x", &host), "HEAD is not read as GET the other way round");
    assert!(other("get", "/admin/x", &host), "method case");
    assert!(other("GET", "/admin/y", &host), "path");
    assert!(other("GET", "/admin/x.json", &host), "a suffix the judged path did not have");
    assert!(other("GET", "/admin%2Fx", &host), "ambiguous escape");
    assert!(other("GET", "/admin/x", &[("host", "other.example.com")]), "host");
    assert!(other("GET", "/admin/x", &[]), "no host");
    assert!(other("GET", "/admin/x", &[("host", "admin.example.com"), ("host", "admin.example.com")]), "two hosts");
    assert!(other("GET", "/admin/x?_method=DELETE", &host), "an override in the query");
    assert!(other("GET", "/admin/x?%5Fmethod=DELETE", &host), "an encoded override name");
    assert!(other("GET", "/admin/x?a=1;_method=PUT", &host), "an override after `;`");
    assert!(other("GET", "/admin/x", &[("host", "admin.example.com"), ("x-method-override", "PUT")]), "header");
    assert!(other("GET", "/admin/x", &[("host", "admin.example.com"), ("x_http_method_override", "PUT")]), "alias");
    let connect = judged("CONNECT", &[], "admin.example.com", "/");
    assert!(!matches(&seen("CONNECT", "admin.example.com:443", &host), &connect), "an authority is no path");
    let mut refused = j.clone();
    refused.outcome = "insufficient_scope".into();
    assert!(!matches(&seen("GET", "/admin/x", &host), &refused), "a refused check lets nothing through");
}

#[test]
fn an_upstream_request_without_an_allowed_check_is_a_mismatch() {
    let answer = || Answer { first_line: "HTTP/1.1 200 OK".into(), timed_out: false };
    let arrived = vec![seen("GET", "/admin/x", &[("host", "api.example.com")])];
    let alone = Outcome { answer: answer(), judged: Vec::new(), arrived: arrived.clone() };
    assert_eq!(alone.mismatches().len(), 1);
    let allowed = judged("GET", &[], "api.example.com", "/admin/x");
    let smuggled = seen("POST", "/admin/y", &[("host", "api.example.com")]);
    let with_smuggled =
        Outcome { answer: answer(), judged: vec![allowed.clone()], arrived: vec![arrived[0].clone(), smuggled] };
    assert_eq!(with_smuggled.mismatches().len(), 1, "{:?}", with_smuggled.mismatches());
    let retried =
        Outcome { answer: answer(), judged: vec![allowed], arrived: vec![arrived[0].clone(), arrived[0].clone()] };
    assert!(retried.mismatches().is_empty());
}

#[test]
fn upstream_requests_belong_to_the_entry_they_name_or_else_to_the_one_in_flight() {
    let sent = |upstream_before| Sent {
        answer: Answer { first_line: String::new(), timed_out: false },
        judged: Vec::new(),
        upstream_before,
    };
    let host = ("host", "api.example.com");
    let received = [
        seen("GET", "/public/ready", &[host]),
        seen("GET", "/a", &[host, (ENTRY_HEADER, "0")]),
        // Entry 0's second request arrives while entry 1 is sent; entry 1's own follows.
        seen("POST", "/late", &[host, (ENTRY_HEADER, "0")]),
        seen("GET", "/b", &[host, (ENTRY_HEADER, "1")]),
        seen("DELETE", "/smuggled", &[host]),
    ];
    let arrived = attribute(&received, &[sent(1), sent(2)]);
    let uris = |entry: usize| arrived[entry].iter().map(|s| s.uri.as_str()).collect::<Vec<_>>();
    assert_eq!((uris(0), uris(1)), (vec!["/a", "/late"], vec!["/b", "/smuggled"]));
}

#[test]
fn judged_lines_are_read_from_the_json_log() {
    let output = concat!(
        "not json\n",
        r#"{"timestamp":"t","level":"DEBUG","fields":{"message":"check judged","door":"http","method":"POST","overrides":"DELETE,PUT","host":"api.example.com","path":"/a","routes":"token+routes 5","outcome":"allow"},"target":"tollgate::decision"}"#,
        "\n",
        r#"{"timestamp":"t","level":"DEBUG","fields":{"message":"check refused","reason":"x"},"target":"tollgate::decision"}"#,
        "\n",
        r#"{"timestamp":"t","level":"DEBUG","fields":{"message":"check judged on no request: its description was refused","peer":"127.0.0.1","outcome":"bad_forwarded_header"},"target":"tollgate::decision"}"#,
        "\n",
    );
    let all = judged_lines(output);
    assert_eq!(all.len(), 2);
    assert_eq!(
        (all[0].method.as_str(), all[0].overrides.clone(), all[0].host.as_str(), all[0].path.as_str()),
        ("POST", vec!["DELETE".to_string(), "PUT".to_string()], "api.example.com", "/a")
    );
    assert_eq!(all[0].methods(), ["POST", "DELETE", "PUT"]);
    assert_eq!(all[1].outcome, "bad_forwarded_header");
}
