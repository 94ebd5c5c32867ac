//! One request, start to end: read it (bounded), apply an injected fault, route it to the
//! console, the login page, the control API or the Kite API, log one line, answer with
//! the sandbox clock's `Date`.

use std::io::{Read, Write};
use std::sync::atomic::Ordering;
use std::sync::{Arc, mpsc};
use std::time::Duration;

use kite_wire::ErrorType;
use kite_wire::control::Fault;

use crate::http::{self, Reply, Req};
use crate::{BODY_TIMEOUT, Shared, api, console, control, login, state};

/// Bodies larger than this are refused (every real form and JSON body is tiny).
const MAX_BODY: u64 = 64 * 1024;

/// Answers one request: faults first, then the route; one log line, without the query.
pub(crate) fn serve(shared: &Arc<Shared>, rq: tiny_http::Request) {
    let Some((rq, body)) = read_body(shared, rq) else {
        return;
    };
    let req = match read_request(&rq, body) {
        Ok(req) => req,
        Err(reply) => {
            log(shared, rq.method().as_str(), rq.url(), reply.status);
            send(shared, rq, reply);
            return;
        }
    };
    let fault = if shared.read(|s, _| s.faults.is_empty()) {
        None
    } else {
        shared.mutate(|s, _| s.take_fault(&req.path))
    };
    let reply = match fault {
        Some(f) => {
            if let Some(ms) = f.delay_ms {
                std::thread::sleep(Duration::from_millis(ms));
            }
            if f.reset {
                log(shared, &req.method, &req.path, 0);
                break_connection(rq);
                return;
            }
            fault_reply(&f).unwrap_or_else(|| route(shared, &req))
        }
        None => route(shared, &req),
    };
    log(shared, &req.method, &req.path, reply.status);
    send(shared, rq, reply);
}

fn log(shared: &Shared, method: &str, url: &str, status: u16) {
    if !shared.log.load(Ordering::Relaxed) {
        return;
    }
    let path = loggable_path(url);
    if status == 0 {
        eprintln!("sandbox: {method} {path} -> connection dropped (fault)");
    } else {
        eprintln!("sandbox: {method} {path} -> {status}");
    }
}

/// The path without its query, with key-like segments (the api_key in console and
/// control paths) cut to their first four characters.
fn loggable_path(url: &str) -> String {
    let path = url.split('?').next().unwrap_or_default();
    path.split('/')
        .map(|seg| {
            if seg.len() >= 12 && seg.chars().all(|c| c.is_ascii_alphanumeric()) {
                format!("{}…", &seg[..4])
            } else {
                seg.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// What a body read gave: the bytes (at most one more than `MAX_BODY`) or the failure.
type Body = std::io::Result<Vec<u8>>;

fn read_limited(rq: &mut tiny_http::Request) -> Body {
    let mut body = Vec::new();
    rq.as_reader()
        .take(MAX_BODY + 1)
        .read_to_end(&mut body)
        .map(|_| body)
}

/// Whether tiny_http already holds the whole body in memory (it buffers announced bodies
/// up to 1 KiB before handing the request over), so reading it cannot block.
fn body_is_buffered(rq: &tiny_http::Request) -> bool {
    let header = |name: &'static str| {
        rq.headers()
            .iter()
            .find(|h| h.field.equiv(name))
            .map(|h| h.value.as_str().to_ascii_lowercase())
    };
    if header("Connection").is_some_and(|c| c.contains("upgrade")) {
        return false;
    }
    match rq.body_length() {
        Some(0) => true,
        Some(n) => n <= 1024 && header("Expect").is_none(),
        None => header("Transfer-Encoding").is_none(),
    }
}

/// Reads the body, giving the client `BODY_TIMEOUT` to send one that is not buffered yet.
/// Such a read runs on a thread of its own: a client that stalls loses its request (the
/// worker moves on), and that thread answers 408 if the body ever ends or the client
/// gives up. tiny_http offers no socket timeouts, so this is how stalled clients are kept
/// from holding every worker.
fn read_body(
    shared: &Arc<Shared>,
    mut rq: tiny_http::Request,
) -> Option<(tiny_http::Request, Body)> {
    if body_is_buffered(&rq) {
        let body = read_limited(&mut rq);
        return Some((rq, body));
    }
    let (tx, rx) = mpsc::sync_channel(1);
    let late = Arc::clone(shared);
    let method = rq.method().as_str().to_string();
    let url = rq.url().to_string();
    std::thread::spawn(move || {
        let body = read_limited(&mut rq);
        if let Err(mpsc::SendError((rq, _))) = tx.send((rq, body)) {
            log(&late, &method, &url, 408);
            let reply = Reply::error(
                408,
                &ErrorType::Input,
                "The request body did not arrive in time.",
            );
            send(&late, rq, reply);
        }
    });
    rx.recv_timeout(BODY_TIMEOUT).ok()
}

/// The request with its body, or the answer to a body that could not be read or is too large.
fn read_request(rq: &tiny_http::Request, body: Body) -> Result<Req, Reply> {
    let url = rq.url().to_string();
    let (path, query) = url.split_once('?').unwrap_or((url.as_str(), ""));
    let header = |name: &'static str| {
        rq.headers()
            .iter()
            .find(|h| h.field.equiv(name))
            .map(|h| h.value.as_str().to_string())
    };
    let Ok(body) = body else {
        return Err(Reply::input_error("The request body could not be read."));
    };
    if body.len() as u64 > MAX_BODY {
        return Err(Reply::error(
            413,
            &ErrorType::Input,
            "The request body is too large.",
        ));
    }
    Ok(Req {
        method: rq.method().as_str().to_ascii_uppercase(),
        path: path.to_string(),
        query: http::parse_pairs(query.as_bytes()),
        query_string: query.to_string(),
        authorization: header("Authorization"),
        cookie: header("Cookie"),
        peer: rq.remote_addr().map(|a| a.ip().to_canonical()),
        body,
    })
}

fn route(shared: &Shared, req: &Req) -> Reply {
    let p = req.path.as_str();
    if p == "/connect/login" || p == "/connect/authorize" {
        login::handle(shared, req)
    } else if p == "/console" || p.starts_with("/console/") {
        console::handle(shared, req)
    } else if p.starts_with("/_sandbox/") {
        control::handle(shared, req)
    } else {
        api::handle(shared, req)
    }
}

/// The answer an injected fault gives, or `None` for a delay-only fault.
fn fault_reply(f: &Fault) -> Option<Reply> {
    if let Some(body) = &f.body {
        return Some(Reply {
            status: f.status.unwrap_or(500),
            content_type: Some("text/plain; charset=utf-8"),
            headers: Vec::new(),
            body: body.clone().into_bytes(),
        });
    }
    let status = f.status?;
    let message = match status {
        403 => state::MSG_BAD_KEY_OR_TOKEN,
        404 => "Route not found",
        429 => "Too many requests",
        400 => "Invalid input (injected fault).",
        502 => "Bad gateway (injected fault).",
        503 => "Service unavailable (injected fault).",
        _ => "Something went wrong (injected fault).",
    };
    Some(Reply::error(
        status,
        &ErrorType::for_status(status),
        message,
    ))
}

/// Sends the answer with an explicit `Date` from the sandbox clock.
fn send(shared: &Shared, rq: tiny_http::Request, reply: Reply) {
    let date = jiff::fmt::rfc2822::DateTimePrinter::new()
        .timestamp_to_rfc9110_string(&shared.now())
        .unwrap_or_default();
    let mut resp = tiny_http::Response::from_data(reply.body).with_status_code(reply.status);
    let mut headers = reply.headers;
    headers.push(("Date", date));
    if let Some(ct) = reply.content_type {
        headers.push(("Content-Type", ct.to_string()));
    }
    for (name, value) in headers {
        if let Ok(h) = tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            resp.add_header(h);
        }
    }
    let _ = rq.respond(resp);
}

/// A "reset" fault: the client gets a line that is not HTTP and then nothing, which every
/// client reports as a broken connection (tiny_http cannot close the socket directly).
fn break_connection(rq: tiny_http::Request) {
    let mut w = rq.into_writer();
    let _ = w.write_all(b"\x00\r\n\r\n");
    let _ = w.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_paths_drop_queries_and_cut_keys() {
        assert_eq!(
            loggable_path("/session/token?api_key=k&access_token=t"),
            "/session/token"
        );
        assert_eq!(
            loggable_path("/console/apps/abcd1234efgh5678/regenerate"),
            "/console/apps/abcd…/regenerate"
        );
        assert_eq!(
            loggable_path("/user/margins/equity"),
            "/user/margins/equity"
        );
    }

    #[test]
    fn status_faults_give_the_documented_envelope() {
        let f = |status: Option<u16>, body: Option<&str>| Fault {
            path: "/x".into(),
            status,
            delay_ms: None,
            body: body.map(str::to_string),
            reset: false,
            count: 1,
        };
        let r = fault_reply(&f(Some(429), None)).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(
            (v["error_type"].as_str(), v["message"].as_str()),
            (Some("NetworkException"), Some("Too many requests"))
        );
        let r = fault_reply(&f(None, Some("<html>"))).unwrap();
        assert_eq!((r.status, r.body.as_slice()), (500, b"<html>".as_slice()));
        assert!(!r.content_type.unwrap().contains("json"));
        assert!(fault_reply(&f(None, None)).is_none());
    }
}
