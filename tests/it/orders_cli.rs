//! Order readiness through the real binary against real sandboxes: the static IP rule per
//! address family (`doctor`'s `orders ipv4` / `orders ipv6`), the plan Kite shows
//! (`init --plan connect` on a Personal app) and what `status --json` keeps of both.
//! The probe cancels an order ID that cannot exist: no order is ever placed.

use std::sync::Arc;

use crate::support::cli::{App, Run, World, free_port, redirect_url, run_command};
use serde_json::{Value, json};

/// The doctor probe called `name` in a `doctor --json` answer.
fn probe<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc.as_array()
        .expect("a list of probes")
        .iter()
        .find(|p| p["probe"] == name)
        .unwrap_or_else(|| panic!("no probe {name:?} in {doc}"))
}

fn doctor(run: &Run) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
}

fn set_ips(w: &World, ips: &[&str]) {
    w.control(
        &format!("/_sandbox/accounts/{}/ips", w.sandbox.client_id),
        &json!({ "ips": ips }),
    );
}

#[test]
fn doctor_names_the_refused_ipv4_address_and_passes_once_it_is_listed() {
    let w = World::new();
    // init runs the probe too; the new account has no IPs, and init still succeeds.
    let app = w.create_app();
    let run = w
        .run(&w.init_args(&app), &format!("{}\n", app.api_secret))
        .expect(0);
    assert!(
        run.stderr.contains("no order is placed or changed"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("no IPs are on the IP Whitelist"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(
            "To send orders from here: add 127.0.0.1 on the sandbox console's profile page"
        ),
        "{}",
        run.stderr
    );
    assert!(
        w.keyring.lookup("sandbox/apps/default/app").is_some(),
        "kept"
    );

    set_ips(&w, &["127.0.0.2"]);
    let run = w.run(&["--json", "doctor"], "").expect(1);
    let doc = doctor(&run);
    let v4 = probe(&doc, "orders ipv4");
    assert_eq!(v4["verdict"], "fail", "{v4}");
    assert!(
        v4["detail"]
            .as_str()
            .unwrap()
            .contains("Kite saw IP 127.0.0.1"),
        "{v4}"
    );
    assert!(
        v4["fix"].as_str().unwrap().contains("add 127.0.0.1"),
        "{v4}"
    );
    assert!(v4["fix"].as_str().unwrap().contains("IP Whitelist"), "{v4}");
    // This sandbox serves IPv4 only.
    let v6 = probe(&doc, "orders ipv6");
    assert_eq!(v6["verdict"], "skip", "{v6}");
    assert!(
        v6["detail"]
            .as_str()
            .unwrap()
            .contains("does not serve ::1"),
        "{v6}"
    );

    set_ips(&w, &["127.0.0.2", "127.0.0.1"]);
    let run = w.run(&["--json", "doctor"], "");
    let doc = doctor(&run);
    let v4 = probe(&doc, "orders ipv4");
    assert_eq!(v4["verdict"], "pass", "{v4}");
    assert!(
        v4["detail"]
            .as_str()
            .unwrap()
            .contains("allowed over IPv4 127.0.0.1"),
        "{v4}"
    );
    assert_eq!(probe(&doc, "plan")["verdict"], "pass");
    assert_eq!(run.code, 0, "{doc}");

    // status keeps the last probe and when it ran.
    let run = w.run(&["--json", "status"], "").expect(0);
    let st: Value = serde_json::from_str(&run.stdout).unwrap();
    let orders = &st["profiles"][0]["orders"];
    assert_eq!(orders["ipv4"]["verdict"], "pass", "{st}");
    assert!(orders["checked_at"].is_string(), "{st}");
}

#[test]
fn with_both_loopbacks_served_and_only_ipv4_listed_doctor_fails_orders_ipv6_naming_1() {
    let w = World::new();
    let sb = kite_sandbox::start_on(
        kite_sandbox::SandboxOptions {
            auto_approve: true,
            ..kite_sandbox::SandboxOptions::default()
        },
        &["[::1]:0".to_string()],
        Arc::new(kite_sandbox::WallClock),
    )
    .expect("this machine serves ::1");
    sb.quiet();
    assert_eq!(sb.urls.len(), 2);
    let url = sb.url.as_str().to_string();
    let http = reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .unwrap();
    let post = |path: &str, body: Value| -> Value {
        http.post(format!("{}{}", url.trim_end_matches('/'), path))
            .json(&body)
            .send()
            .unwrap()
            .json()
            .unwrap()
    };
    let redirect = redirect_url(free_port());
    let v = post(
        "/_sandbox/apps",
        json!({"client_id": sb.demo.client_id, "redirect_url": redirect, "plan": "personal"}),
    );
    let app = App {
        api_key: v["api_key"].as_str().unwrap().into(),
        api_secret: v["api_secret"].as_str().unwrap().into(),
        redirect_url: redirect,
    };
    post(
        &format!("/_sandbox/accounts/{}/ips", sb.demo.client_id),
        json!({"ips": ["127.0.0.1"]}),
    );
    let cmd = |args: &[&str]| {
        let mut c = w.live_command(&["--sandbox-url", &url]);
        c.args(args);
        c
    };
    let mut init = vec![
        "init",
        "--no-input",
        "--client-id",
        sb.demo.client_id.as_str(),
        "--api-key",
        &app.api_key,
        "--redirect-url",
        &app.redirect_url,
        "--plan",
        "personal",
        "--api-secret-stdin",
        "--timeout",
        "20",
    ];
    let run = run_command(cmd(&init), &format!("{}\n", app.api_secret)).expect(0);
    assert!(
        run.stderr
            .contains("orders over IPv6 are refused: Kite saw IP ::1"),
        "{}",
        run.stderr
    );
    let run = run_command(cmd(&["--json", "doctor"]), "").expect(1);
    let doc = doctor(&run);
    assert_eq!(probe(&doc, "orders ipv4")["verdict"], "pass", "{doc}");
    let v6 = probe(&doc, "orders ipv6");
    assert_eq!(v6["verdict"], "fail", "{v6}");
    assert!(v6["detail"].as_str().unwrap().contains("::1"), "{v6}");
    assert!(v6["fix"].as_str().unwrap().contains("add ::1"), "{v6}");

    // Told the bot runs elsewhere, init does not probe.
    init.extend(["--force", "--orders-from", "elsewhere"]);
    let run = run_command(cmd(&init), &format!("{}\n", app.api_secret)).expect(0);
    assert!(
        run.stderr
            .contains("Orders from this machine not checked (--orders-from elsewhere)"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("no order is placed"), "{}", run.stderr);
}

#[test]
fn init_plan_connect_on_a_personal_app_records_personal_and_says_why() {
    let w = World::new();
    let app = w.create_app(); // Personal
    let mut args = w.init_args(&app);
    let at = args.iter().position(|a| *a == "personal").unwrap();
    args[at] = "connect";
    let run = w.run(&args, &format!("{}\n", app.api_secret)).expect(0);
    assert!(
        run.stderr
            .contains("Insufficient permission for that call.")
            && run.stderr.contains("recorded as Personal")
            && run.stderr.contains("/billing"),
        "{}",
        run.stderr
    );
    let run = w.run(&["--json", "status"], "").expect(0);
    let st: Value = serde_json::from_str(&run.stdout).unwrap();
    let p = &st["profiles"][0];
    assert_eq!(p["plan"], "Personal", "{st}");
    assert_eq!(p["orders"]["ipv4"]["verdict"], "fail", "{st}");
}
