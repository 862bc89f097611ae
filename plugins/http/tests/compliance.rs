//! The effector compliance suite on `http`, linked as a library and loaded from its `.so`, and the
//! plugin's own behaviour against a small HTTP server on loopback that the tests start.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use weft_abi::Provider;
use weft_abi::compliance::effector::{self, Harness, Sample, Suite, TestCall};
use weft_abi::effector::Effector;
use weft_plugin_http::{Header, HttpPlugin, Request, Response};

fn args<T: serde::Serialize>(value: &T) -> Vec<u8> {
    postcard::to_stdvec(value).unwrap()
}

fn suite(open: &dyn Fn(&Path) -> Box<dyn Effector>) -> Suite<'_> {
    // Nothing is allowed with `{}`: the samples get an in-band refusal without any network.
    let request = Request { method: "GET".into(), url: "http://127.0.0.1:9/".into(), ..Request::default() };
    Suite {
        open,
        samples: vec![
            Sample::new("http", "get", args(&("http://127.0.0.1:9/",))),
            Sample::new("http", "fetch", args(&(request,))),
            Sample::new("http", "get", args(&("https://127.0.0.1:9/",))).config(r#"{"allow_hosts":["127.0.0.1"]}"#),
        ],
        state: None,
    }
}

#[test]
fn linked() {
    effector::run(&suite(&|dir| HttpPlugin::effector("", dir).unwrap()));
}

#[test]
fn loaded_from_the_shared_library() {
    let path = weft_abi::compliance::built_library(&weft_abi::library_file_name("http"));
    let plugin = weft_abi::Plugin::load(&path).unwrap();
    assert_eq!(plugin.name(), "http");
    effector::run(&suite(&|dir| Box::new(plugin.effector("", dir).unwrap())));
}

/// A test server on 127.0.0.1: one thread, one connection at a time, at most 200 connections and
/// 2 minutes, then it stops by itself.
fn server() -> u16 {
    static PORT: OnceLock<u16> = OnceLock::new();
    *PORT.get_or_init(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let started = Instant::now();
            for stream in listener.incoming().take(200) {
                if started.elapsed() > Duration::from_secs(120) {
                    break;
                }
                if let Ok(s) = stream {
                    std::thread::spawn(move || serve(s));
                }
            }
        });
        port
    })
}

fn serve(stream: TcpStream) {
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or("").to_owned(), parts.next().unwrap_or("").to_owned());
    let mut headers = Vec::new();
    let mut length = 0usize;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
            break;
        }
        if let Some((n, v)) = h.trim().split_once(':') {
            if n.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap_or(0);
            }
            headers.push(format!("{}={}", n.trim(), v.trim()));
        }
    }
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    let mut out = stream;
    let respond = |out: &mut TcpStream, status: &str, extra: &str, body: &[u8]| {
        let head = format!("HTTP/1.1 {status}\r\ncontent-length: {}\r\n{extra}\r\n", body.len());
        let _ = out.write_all(head.as_bytes());
        let _ = out.write_all(body);
    };
    match path.as_str() {
        "/hello" => respond(&mut out, "200 OK", "content-type: text/plain\r\n", b"hi"),
        "/echo" => {
            let text = format!("{method} {path}\n{}\n{}", headers.join("\n"), String::from_utf8_lossy(&body));
            respond(&mut out, "201 Created", "", text.as_bytes());
        }
        "/missing" => respond(&mut out, "404 Not Found", "", b"no"),
        "/redirect" => respond(&mut out, "302 Found", "location: /hello\r\n", b""),
        "/big" => respond(&mut out, "200 OK", "", &vec![b'x'; 2 << 20]),
        "/chunked" => {
            let _ = out.write_all(
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n",
            );
        }
        "/eof" => {
            let _ = out.write_all(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\nuntil the end");
        }
        "/slow" => {
            std::thread::sleep(Duration::from_secs(2));
            respond(&mut out, "200 OK", "", b"late");
        }
        "/garbage" => {
            let _ = out.write_all(b"SMTP ready\r\n\r\n");
        }
        _ => respond(&mut out, "400 Bad Request", "", b""),
    }
}

struct Client {
    _dir: tempfile::TempDir,
    harness: Harness,
    effector: Box<dyn Effector>,
    config: String,
}

impl Client {
    fn new(node_config: &str, module_config: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let effector = HttpPlugin::effector(node_config, dir.path()).unwrap();
        Client { harness: Harness::new(dir.path()), _dir: dir, effector, config: module_config.into() }
    }

    fn allowing_the_server() -> Self {
        Self::new("", r#"{"allow_hosts":["127.0.0.1"]}"#)
    }

    fn call(&self, call: TestCall) -> Response {
        let call = call.config(&self.config).module("fetcher");
        postcard::from_bytes(&self.harness.grant_and_call(self.effector.as_ref(), &call).unwrap()).unwrap()
    }

    fn get(&self, path: &str) -> Response {
        self.call(TestCall::new("http", "get", args(&(format!("http://127.0.0.1:{}{path}", server()),))))
    }
}

#[test]
fn get_and_fetch_reach_an_allowed_server() {
    let c = Client::allowing_the_server();
    let r = c.get("/hello");
    assert_eq!((r.error, r.status, r.body), (None, 200, b"hi".to_vec()));
    assert!(r.headers.contains(&Header { name: "content-type".into(), value: "text/plain".into() }));
    let req = Request {
        method: "post".into(),
        url: format!("http://127.0.0.1:{}/echo", server()),
        headers: vec![Header { name: "X-Test".into(), value: "yes".into() }],
        body: b"payload".to_vec(),
    };
    let r = c.call(TestCall::new("http", "fetch", args(&(req,))));
    assert_eq!(r.status, 201, "{r:?}");
    let text = String::from_utf8(r.body).unwrap();
    assert!(text.starts_with("POST /echo\n"), "{text}");
    assert!(text.contains("x-test=yes") && text.ends_with("payload"), "{text}");
    assert_eq!(c.get("/missing").status, 404, "an HTTP error status is a response, not an error");
    let r = c.get("/redirect");
    assert_eq!(r.status, 302, "redirects are not followed");
    assert_eq!(String::from_utf8(c.get("/chunked").body).unwrap(), "hello, world");
    let r = c.get("/eof");
    assert_eq!((r.status, r.body), (200, b"until the end".to_vec()), "after a 100, to the end of the stream");
}

#[test]
fn the_allow_list_is_enforced_per_module() {
    let none = Client::new("", "{}");
    let r = none.get("/hello");
    let e = r.error.unwrap();
    assert_eq!(r.status, 0);
    assert!(
        e.contains("host 127.0.0.1 (port ") && e.contains("is not in the allow-list of module fetcher (allowed: none)"),
        "{e}"
    );
    assert!(e.contains("allow_hosts in [modules.capability_config.http]"), "the error says what to do: {e}");
    let other_port = Client::new("", r#"{"allow_hosts":["127.0.0.1:1"]}"#);
    assert!(other_port.get("/hello").error.unwrap().contains("(allowed: 127.0.0.1:1)"));
    let named = Client::new("", r#"{"allow_hosts":["localhost.example"]}"#);
    assert!(named.get("/hello").error.unwrap().contains("not in the allow-list"), "names are not resolved to match");
    // Userinfo tricks do not get past the check.
    let r = Client::new("", r#"{"allow_hosts":["allowed.example"]}"#).call(TestCall::new(
        "http",
        "get",
        args(&("http://allowed.example@127.0.0.1/hello",)),
    ));
    assert!(r.error.unwrap().contains("user names and passwords"));
    let c = Client::allowing_the_server();
    let e = c.call(TestCall::new("http", "get", args(&("https://127.0.0.1/",)))).error.unwrap();
    assert!(e.contains("https is not supported") && e.contains("no TLS"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::new(dir.path());
    let bad = TestCall::new("http", "get", Vec::new()).config(r#"{"allow_hosts":["http://x/"]}"#);
    let e = h.grant(HttpPlugin::effector("", dir.path()).unwrap().as_ref(), &bad).unwrap_err();
    assert!(e.message().contains("allow_hosts entry \"http://x/\""), "bad entries fail the grant: {e}");
}

#[test]
fn size_and_time_limits() {
    let c =
        Client::new("max_response_bytes = 1048576", r#"{"allow_hosts":["127.0.0.1"],"max_response_bytes":4000000}"#);
    let e = c.get("/big").error.unwrap();
    assert!(e.contains("larger than 1048576 bytes"), "the node's cap wins over the module's: {e}");
    let small = Client::new("", r#"{"allow_hosts":["127.0.0.1"],"max_response_bytes":3}"#);
    assert!(small.get("/chunked").error.unwrap().contains("larger than 3 bytes"));
    assert_eq!(small.get("/hello").body, b"hi");

    let quick = Client::new("", r#"{"allow_hosts":["127.0.0.1"],"timeout_ms":300}"#);
    let started = Instant::now();
    let e = quick.get("/slow").error.unwrap();
    assert!(started.elapsed() < Duration::from_millis(1500), "took {:?}", started.elapsed());
    assert!(e.contains("no complete response within 300 ms"), "{e}");
    let c = Client::allowing_the_server();
    let url = format!("http://127.0.0.1:{}/slow", server());
    let r = c.call(TestCall::new("http", "get", args(&(url,))).time_left(Duration::from_millis(200)));
    assert!(r.error.unwrap().contains("within 200 ms"), "the module's remaining time bounds the request");

    assert!(c.get("/garbage").error.unwrap().contains("not an HTTP/1.x response"));
    let req = Request {
        method: "GET".into(),
        url: format!("http://127.0.0.1:{}/echo", server()),
        headers: vec![Header { name: "x".into(), value: "a\r\nhost: evil".into() }],
        body: vec![],
    };
    assert!(c.call(TestCall::new("http", "fetch", args(&(req,)))).error.unwrap().contains("not a valid header"));
    let refused = c.call(TestCall::new("http", "get", args(&("http://127.0.0.1:9/",))));
    assert!(refused.error.unwrap().contains("cannot connect to 127.0.0.1:9"));
}
