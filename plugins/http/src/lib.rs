//! The `http` effector plugin: outbound HTTP/1.1 requests, to the hosts a blueprint allows.
//!
//! Capability `http` (grant it with `capabilities = ["http"]`):
//!
//! ```text
//! record header { name: string, value: string }
//! record request { method: string, url: string, headers: array<header>, body: bytes }
//! record response { error: optional<string>, status: u16, headers: array<header>, body: bytes }
//!
//! fetch(request: request) -> response
//! get(url: string) -> response
//! ```
//!
//! Everything that can go wrong with a request — a host not on the module's allow-list, a
//! malformed URL, a refused connection, a timeout, a response over the size limit — comes back in
//! `error` (with `status` 0), never as a trap. A response with any status (404, 500) is a response:
//! `error` is none. Redirects are not followed (a 3xx is returned as it is; its `location` header
//! may be fetched if allowed). Only `http://` is spoken: this plugin has no TLS, so an `https://`
//! URL fails with an error saying so (put a TLS-terminating proxy on an allowed host if needed).
//!
//! # Configuration
//! Each module lists the hosts it may reach (`[modules.capability_config.http]` of a blueprint);
//! none are allowed without it:
//!
//! ```toml
//! allow_hosts = ["api.example.com", "127.0.0.1:8080", "*.example.org"]   # host, host:port, *.domain
//! timeout_ms = 2000               # per request, within the module's time_limit
//! max_response_bytes = 65536      # body size, within the node's cap
//! ```
//!
//! The node's `[plugins.config.http]` (TOML) sets the caps:
//!
//! ```toml
//! max_response_bytes = 4194304    # largest response body any module may ask for
//! max_request_bytes = 1048576     # largest request body
//! max_header_bytes = 65536        # response status line and headers together
//! timeout_ms = 10000              # longest request
//! ```
//!
//! Host names are resolved with the system resolver, which does not honour the timeout; IP
//! literals do not resolve. The allow-list is checked on the host name as written in the URL.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use weft_abi::effector::{Call, Capability, Effector, Grant};
use weft_abi::interface::{Function, Record, Type};
use weft_abi::{Error, Kind, Manifest, Provider, Result};

/// The capability's name.
pub const CAPABILITY: &str = "http";

/// Hard cap on any response body, whatever the configuration says.
pub const MAX_RESPONSE_BYTES: u64 = 64 << 20;

/// Most response headers kept.
const MAX_HEADERS: usize = 128;

/// The node's configuration of the plugin.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Largest response body a module may ask for.
    pub max_response_bytes: u64,
    /// Largest request body.
    pub max_request_bytes: u64,
    /// Largest status line and headers of a response.
    pub max_header_bytes: usize,
    /// Longest request, in ms.
    pub timeout_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_response_bytes: 4 << 20,
            max_request_bytes: 1 << 20,
            max_header_bytes: 64 << 10,
            timeout_ms: 10_000,
        }
    }
}

impl Config {
    /// Parses the configuration text (empty means defaults).
    ///
    /// # Errors
    /// Malformed TOML, unknown keys, values out of range: `INVALID_CONFIG`.
    pub fn parse(text: &str) -> Result<Self> {
        let c: Self = toml::from_str(text).map_err(|e| {
            Error::config(format!("http plugin config: {}", e.message().lines().next().unwrap_or("invalid")))
        })?;
        if c.max_response_bytes > MAX_RESPONSE_BYTES {
            return Err(Error::config(format!(
                "http plugin config: max_response_bytes is at most {MAX_RESPONSE_BYTES}"
            )));
        }
        if c.max_header_bytes < 1024 {
            return Err(Error::config("http plugin config: max_header_bytes must be at least 1024"));
        }
        Ok(c)
    }
}

/// A module's configuration of the capability (`[modules.capability_config.http]`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModuleConfig {
    /// The hosts it may reach: `host`, `host:port`, `*.domain` (any subdomain, not the domain
    /// itself), `[v6 address]:port`.
    #[serde(default)]
    pub allow_hosts: Vec<String>,
    /// Its per-request timeout, ms (within the node's).
    pub timeout_ms: Option<u64>,
    /// Its largest response body (within the node's).
    pub max_response_bytes: Option<u64>,
}

/// One entry of an allow-list.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Allowed {
    /// Lowercase host, or the domain after `*.`.
    host: String,
    wildcard: bool,
    port: Option<u16>,
}

impl Allowed {
    fn parse(entry: &str) -> std::result::Result<Self, String> {
        let bad =
            || format!("allow_hosts entry {entry:?}: write a host, host:port or *.domain, e.g. \"api.example.com\"");
        let lower = entry.trim().to_ascii_lowercase();
        let (wildcard, rest) = match lower.strip_prefix("*.") {
            Some(rest) => (true, rest.to_owned()),
            None => (false, lower.clone()),
        };
        let (host, port) = split_host_port(&rest).ok_or_else(bad)?;
        if host.is_empty() || !host.chars().all(|c| c.is_ascii_alphanumeric() || "-.:_".contains(c)) {
            return Err(bad());
        }
        Ok(Allowed { host, wildcard, port })
    }

    fn matches(&self, host: &str, port: u16) -> bool {
        let host_ok = if self.wildcard {
            host.strip_suffix(&self.host).is_some_and(|head| head.ends_with('.') && head.len() > 1)
        } else {
            host == self.host
        };
        host_ok && self.port.is_none_or(|p| p == port)
    }
}

/// `host`, `host:port`, `[v6]`, `[v6]:port` → (host without brackets, port).
fn split_host_port(s: &str) -> Option<(String, Option<u16>)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?.parse().ok()?),
        };
        return Some((host.to_owned(), port));
    }
    match s.split_once(':') {
        Some((host, port)) => Some((host.to_owned(), Some(port.parse().ok()?))),
        None => Some((s.to_owned(), None)),
    }
}

/// A header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Its name.
    pub name: String,
    /// Its value.
    pub value: String,
}

/// A request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// `GET`, `POST`, ...
    pub method: String,
    /// `http://host[:port]/path?query`.
    pub url: String,
    /// Extra headers (not `host`, `content-length`, `transfer-encoding` or `connection`).
    pub headers: Vec<Header>,
    /// The body.
    pub body: Vec<u8>,
}

/// A response, or why there is none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// Why the request failed; then `status` is 0.
    pub error: Option<String>,
    /// The HTTP status.
    pub status: u16,
    /// The headers, names lowercased.
    pub headers: Vec<Header>,
    /// The body.
    pub body: Vec<u8>,
}

/// A URL this plugin can fetch.
#[derive(Debug, PartialEq, Eq)]
struct Url {
    host: String,
    port: u16,
    /// `host[:port]` for the Host header.
    authority: String,
    /// `/path?query`.
    target: String,
}

fn parse_url(url: &str) -> std::result::Result<Url, String> {
    if url.len() > 8192 {
        return Err(format!("the URL is {} bytes; at most 8192", url.len()));
    }
    if url.chars().any(|c| c.is_ascii_control() || c == ' ') {
        return Err(format!("URL {url:?} contains spaces or control characters; percent-encode them"));
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(format!("URL {url:?} has no scheme; write http://host/path"));
    };
    match scheme.to_ascii_lowercase().as_str() {
        "http" => {}
        "https" => {
            return Err(format!(
                "{url}: https is not supported: this http plugin speaks plain HTTP only (no TLS); use an http:// URL"
            ));
        }
        other => return Err(format!("URL {url:?}: scheme {other:?} is not supported; use http://")),
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    if authority.contains('@') {
        return Err(format!("URL {url:?}: user names and passwords in URLs are not supported; send a header"));
    }
    let authority = authority.to_ascii_lowercase();
    let (host, port) = split_host_port(&authority).ok_or_else(|| format!("URL {url:?}: malformed host or port"))?;
    if host.is_empty() {
        return Err(format!("URL {url:?} has no host"));
    }
    let tail = tail.split('#').next().unwrap_or("");
    let target = if tail.starts_with('/') { tail.to_owned() } else { format!("/{tail}") };
    Ok(Url { host, port: port.unwrap_or(80), authority, target })
}

fn token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// The effector.
#[derive(Debug)]
pub struct Http {
    config: Config,
}

/// What one module may do, from its configuration within the node's caps.
struct Policy {
    allowed: Vec<Allowed>,
    entries: Vec<String>,
    timeout: Duration,
    max_response_bytes: u64,
}

impl Http {
    /// An `http` effector with `config`.
    pub fn new(config: Config) -> Self {
        Http { config }
    }

    fn policy(&self, text: &str) -> Result<Policy> {
        let m: ModuleConfig =
            serde_json::from_str(text).map_err(|e| Error::config(format!("http module config {text:?}: {e}")))?;
        let allowed = m.allow_hosts.iter().map(|h| Allowed::parse(h)).collect::<std::result::Result<Vec<_>, _>>();
        let allowed = allowed.map_err(|e| Error::config(format!("http module config: {e}")))?;
        let timeout = Duration::from_millis(m.timeout_ms.unwrap_or(self.config.timeout_ms).min(self.config.timeout_ms));
        let max_response_bytes =
            m.max_response_bytes.unwrap_or(self.config.max_response_bytes).min(self.config.max_response_bytes);
        Ok(Policy { allowed, entries: m.allow_hosts, timeout, max_response_bytes })
    }

    fn fetch(&self, call: &Call<'_>, policy: &Policy, req: &Request) -> Response {
        let started = Instant::now();
        let budget = call.time_left().min(policy.timeout);
        let deadline = started + budget;
        let what = format!("http {} {}", req.method, req.url);
        match self.exchange(call, policy, req, deadline) {
            Ok(r) => r,
            Err(Failure::Timeout) => failed(format!(
                "{what}: no complete response within {} ms (the module's time_limit, or timeout_ms in \
                 [modules.capability_config.http])",
                budget.as_millis()
            )),
            Err(Failure::Other(e)) => failed(format!("{what}: {e}")),
        }
    }

    fn exchange(
        &self,
        call: &Call<'_>,
        policy: &Policy,
        req: &Request,
        deadline: Instant,
    ) -> std::result::Result<Response, Failure> {
        let url = parse_url(&req.url)?;
        if !policy.allowed.iter().any(|a| a.matches(&url.host, url.port)) {
            let list = if policy.entries.is_empty() { "none".to_owned() } else { policy.entries.join(", ") };
            return Err(Failure::Other(format!(
                "host {} (port {}) is not in the allow-list of module {} (allowed: {list}); add it to \
                 allow_hosts in [modules.capability_config.http] of the blueprint",
                url.host,
                url.port,
                call.module()
            )));
        }
        let method = req.method.to_ascii_uppercase();
        if !token(&method) || method.len() > 16 {
            return Err(Failure::Other(format!("method {:?} is not an HTTP method", req.method)));
        }
        if req.body.len() as u64 > self.config.max_request_bytes {
            return Err(Failure::Other(format!(
                "the request body is {} bytes; at most {} are allowed",
                req.body.len(),
                self.config.max_request_bytes
            )));
        }
        let mut head = format!(
            "{method} {} HTTP/1.1\r\nhost: {}\r\nuser-agent: weft-http/{}\r\nconnection: close\r\n",
            url.target,
            url.authority,
            env!("CARGO_PKG_VERSION")
        );
        if !req.body.is_empty() || !matches!(method.as_str(), "GET" | "HEAD" | "DELETE" | "OPTIONS") {
            head.push_str(&format!("content-length: {}\r\n", req.body.len()));
        }
        for h in &req.headers {
            let name = h.name.to_ascii_lowercase();
            if !token(&name) || h.value.contains(['\r', '\n', '\0']) {
                return Err(Failure::Other(format!("header {:?} is not a valid header", h.name)));
            }
            if matches!(name.as_str(), "host" | "content-length" | "transfer-encoding" | "connection") {
                return Err(Failure::Other(format!("header {name} is set by the plugin; leave it out")));
            }
            head.push_str(&format!("{name}: {}\r\n", h.value));
        }
        head.push_str("\r\n");
        if head.len() > 64 << 10 {
            return Err(Failure::Other("the request headers are larger than 64 KiB".into()));
        }

        let stream = connect(&url, deadline)?;
        let mut writer = stream.try_clone().map_err(|e| Failure::Other(format!("socket: {e}")))?;
        set_timeouts(&stream, deadline)?;
        writer.write_all(head.as_bytes()).map_err(io_failure)?;
        writer.write_all(&req.body).map_err(io_failure)?;
        writer.flush().map_err(io_failure)?;

        let mut reader = BufReader::new(stream);
        let mut header_budget = self.config.max_header_bytes;
        let (status, headers) = loop {
            let (status, headers) = read_head(&mut reader, &mut header_budget, deadline)?;
            // 1xx informational responses precede the real one (101 would switch protocols).
            if (100..200).contains(&status) && status != 101 {
                continue;
            }
            break (status, headers);
        };
        let no_body = method == "HEAD" || status == 204 || status == 304 || status == 101;
        let limit = policy.max_response_bytes;
        let body = if no_body {
            Vec::new()
        } else if header(&headers, "transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
            read_chunked(&mut reader, limit, deadline)?
        } else if let Some(len) = header(&headers, "content-length") {
            let len: u64 = len.trim().parse().map_err(|_| Failure::Other(format!("bad content-length {len:?}")))?;
            if len > limit {
                return Err(too_large(limit));
            }
            let mut body = vec![0; usize::try_from(len).map_err(|_| too_large(limit))?];
            read_exact(&mut reader, &mut body, deadline)?;
            body
        } else {
            read_to_end(&mut reader, limit, deadline)?
        };
        Ok(Response { error: None, status, headers, body })
    }
}

enum Failure {
    Timeout,
    Other(String),
}

impl From<String> for Failure {
    fn from(s: String) -> Self {
        Failure::Other(s)
    }
}

fn failed(error: String) -> Response {
    Response { error: Some(error), ..Response::default() }
}

fn too_large(limit: u64) -> Failure {
    Failure::Other(format!(
        "the response body is larger than {limit} bytes (max_response_bytes in [modules.capability_config.http])"
    ))
}

fn io_failure(e: std::io::Error) -> Failure {
    match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => Failure::Timeout,
        _ => Failure::Other(e.to_string()),
    }
}

fn left(deadline: Instant) -> std::result::Result<Duration, Failure> {
    let d = deadline.saturating_duration_since(Instant::now());
    if d.is_zero() { Err(Failure::Timeout) } else { Ok(d) }
}

fn set_timeouts(stream: &TcpStream, deadline: Instant) -> std::result::Result<(), Failure> {
    let d = left(deadline)?;
    stream.set_read_timeout(Some(d)).and_then(|()| stream.set_write_timeout(Some(d))).map_err(io_failure)
}

fn connect(url: &Url, deadline: Instant) -> std::result::Result<TcpStream, Failure> {
    let addrs: Vec<_> = (url.host.as_str(), url.port)
        .to_socket_addrs()
        .map_err(|e| Failure::Other(format!("cannot resolve {}: {e}", url.host)))?
        .collect();
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, left(deadline)?) {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) => last = Some(e),
        }
    }
    match last {
        Some(e) if matches!(e.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock) => {
            Err(Failure::Timeout)
        }
        Some(e) => Err(Failure::Other(format!("cannot connect to {}: {e}", url.authority))),
        None => Err(Failure::Other(format!("{} resolves to no address", url.host))),
    }
}

/// One line (without its CR LF), taking at most `budget` bytes from it.
fn read_line(
    r: &mut BufReader<TcpStream>,
    budget: &mut usize,
    deadline: Instant,
) -> std::result::Result<String, Failure> {
    let mut line = Vec::new();
    loop {
        set_timeouts(r.get_ref(), deadline)?;
        let buf = r.fill_buf().map_err(io_failure)?;
        if buf.is_empty() {
            return Err(Failure::Other("the server closed the connection in the middle of the response head".into()));
        }
        let (take, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        if take > *budget {
            return Err(Failure::Other("the response head (status line and headers) is too large".into()));
        }
        *budget -= take;
        line.extend_from_slice(&buf[..take]);
        r.consume(take);
        if done {
            while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                line.pop();
            }
            return Ok(String::from_utf8_lossy(&line).into_owned());
        }
    }
}

fn read_head(
    r: &mut BufReader<TcpStream>,
    budget: &mut usize,
    deadline: Instant,
) -> std::result::Result<(u16, Vec<Header>), Failure> {
    let status_line = read_line(r, budget, deadline)?;
    let mut parts = status_line.splitn(3, ' ');
    let (version, code) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let status: u16 = match (version.starts_with("HTTP/1."), code.parse::<u16>()) {
        (true, Ok(c)) if (100..1000).contains(&c) => c,
        _ => return Err(Failure::Other(format!("not an HTTP/1.x response: {:?}", truncate(&status_line)))),
    };
    let mut headers = Vec::new();
    loop {
        let line = read_line(r, budget, deadline)?;
        if line.is_empty() {
            return Ok((status, headers));
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(Failure::Other(format!("malformed response header {:?}", truncate(&line))));
        };
        if headers.len() >= MAX_HEADERS {
            return Err(Failure::Other(format!("more than {MAX_HEADERS} response headers")));
        }
        headers.push(Header { name: name.trim().to_ascii_lowercase(), value: value.trim().to_owned() });
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

fn header<'a>(headers: &'a [Header], name: &str) -> Option<&'a str> {
    headers.iter().find(|h| h.name == name).map(|h| h.value.as_str())
}

fn read_exact(r: &mut BufReader<TcpStream>, buf: &mut [u8], deadline: Instant) -> std::result::Result<(), Failure> {
    let mut at = 0;
    while at < buf.len() {
        set_timeouts(r.get_ref(), deadline)?;
        match r.read(&mut buf[at..]) {
            Ok(0) => return Err(Failure::Other("the server closed the connection before the end of the body".into())),
            Ok(n) => at += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_failure(e)),
        }
    }
    Ok(())
}

fn read_to_end(r: &mut BufReader<TcpStream>, limit: u64, deadline: Instant) -> std::result::Result<Vec<u8>, Failure> {
    let mut body = Vec::new();
    let mut chunk = [0u8; 16 << 10];
    loop {
        set_timeouts(r.get_ref(), deadline)?;
        match r.read(&mut chunk) {
            Ok(0) => return Ok(body),
            Ok(n) => {
                if (body.len() + n) as u64 > limit {
                    return Err(too_large(limit));
                }
                body.extend_from_slice(&chunk[..n]);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_failure(e)),
        }
    }
}

fn read_chunked(r: &mut BufReader<TcpStream>, limit: u64, deadline: Instant) -> std::result::Result<Vec<u8>, Failure> {
    let mut body = Vec::new();
    let mut budget = 64 << 10;
    loop {
        let line = read_line(r, &mut budget, deadline)?;
        let size = line.split(';').next().unwrap_or("").trim();
        let size = u64::from_str_radix(size, 16).map_err(|_| Failure::Other(format!("bad chunk size {size:?}")))?;
        if size == 0 {
            // Trailers, up to the empty line.
            while !read_line(r, &mut budget, deadline)?.is_empty() {}
            return Ok(body);
        }
        if body.len() as u64 + size > limit {
            return Err(too_large(limit));
        }
        let start = body.len();
        body.resize(start + usize::try_from(size).map_err(|_| too_large(limit))?, 0);
        read_exact(r, &mut body[start..], deadline)?;
        let mut crlf = [0u8; 2];
        read_exact(r, &mut crlf, deadline)?;
        budget = 64 << 10;
    }
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    postcard::to_stdvec(value).map_err(|e| Error::other(format!("http: cannot encode the results: {e}")))
}

impl Effector for Http {
    fn capabilities(&self) -> Result<Vec<Capability>> {
        let headers = || Type::array(Type::record("header"));
        Ok(vec![
            Capability::new(CAPABILITY)
                .record(Record::new("header").field("name", Type::String).field("value", Type::String))
                .record(
                    Record::new("request")
                        .field("method", Type::String)
                        .field("url", Type::String)
                        .field("headers", headers())
                        .field("body", Type::Bytes),
                )
                .record(
                    Record::new("response")
                        .field("error", Type::optional(Type::String))
                        .field("status", Type::U16)
                        .field("headers", headers())
                        .field("body", Type::Bytes),
                )
                .function(
                    Function::new("fetch").param("request", Type::record("request")).result(Type::record("response")),
                )
                .function(Function::new("get").param("url", Type::String).result(Type::record("response"))),
        ])
    }

    fn grant(&self, grant: &Grant<'_>) -> Result<()> {
        self.policy(grant.config()).map(drop)
    }

    fn call(&self, call: &Call<'_>) -> Result<Vec<u8>> {
        if call.capability() != CAPABILITY {
            return Err(call.unknown_function());
        }
        let request = match call.function() {
            "fetch" => {
                let (r,): (Request,) = postcard::from_bytes(call.args()).map_err(|e| call.bad_args(e))?;
                r
            }
            "get" => {
                let (url,): (String,) = postcard::from_bytes(call.args()).map_err(|e| call.bad_args(e))?;
                Request { method: "GET".into(), url, ..Request::default() }
            }
            _ => return Err(call.unknown_function()),
        };
        let policy = self.policy(call.config())?;
        encode(&self.fetch(call, &policy, &request))
    }
}

/// The plugin provider.
#[derive(Debug)]
pub struct HttpPlugin;

impl Provider for HttpPlugin {
    fn manifest() -> Manifest {
        Manifest {
            name: "http".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "outbound HTTP/1.1 requests to the hosts a blueprint allows, per module".into(),
            kinds: vec![Kind::EFFECTOR],
        }
    }

    fn effector(config: &str, _dir: &Path) -> Result<Box<dyn Effector>> {
        Ok(Box::new(Http::new(Config::parse(config)?)))
    }
}

weft_abi::export_plugin!(HttpPlugin);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_strictly() {
        let u = parse_url("http://Example.COM:8080/a/b?c=d#frag").unwrap();
        assert_eq!(
            u,
            Url {
                host: "example.com".into(),
                port: 8080,
                authority: "example.com:8080".into(),
                target: "/a/b?c=d".into()
            }
        );
        assert_eq!(parse_url("http://h").unwrap().target, "/");
        assert_eq!(parse_url("http://h?q").unwrap().target, "/?q");
        let v6 = parse_url("http://[::1]:9/x").unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("::1", 9));
        assert!(parse_url("https://h/").unwrap_err().contains("no TLS"));
        assert!(parse_url("ftp://h/").unwrap_err().contains("scheme"));
        assert!(parse_url("http://allowed.com@evil.com/").unwrap_err().contains("user names"));
        assert!(parse_url("http://h:99999/").is_err());
        assert!(parse_url("http://h/a b").is_err());
        assert!(parse_url("h/path").unwrap_err().contains("no scheme"));
        assert!(parse_url("http:///path").unwrap_err().contains("no host"));
    }

    #[test]
    fn allow_list_entries_match_host_port_and_subdomains() {
        let a = Allowed::parse("API.example.com").unwrap();
        assert!(a.matches("api.example.com", 80) && a.matches("api.example.com", 8080));
        assert!(!a.matches("evil.api.example.com", 80) && !a.matches("example.com", 80));
        let p = Allowed::parse("127.0.0.1:8080").unwrap();
        assert!(p.matches("127.0.0.1", 8080) && !p.matches("127.0.0.1", 8081));
        let w = Allowed::parse("*.example.org").unwrap();
        assert!(w.matches("a.example.org", 80) && w.matches("a.b.example.org", 1));
        assert!(!w.matches("example.org", 80) && !w.matches("badexample.org", 80));
        assert!(Allowed::parse("[::1]:8080").unwrap().matches("::1", 8080));
        assert!(Allowed::parse("http://x").is_err());
        assert!(Allowed::parse("").is_err());
        assert!(Allowed::parse("a b").is_err());
    }
}
