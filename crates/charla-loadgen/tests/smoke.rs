//! CI's smoke run: every scenario, scaled down to a few dozen connections
//! and about a second each, against the real server started in this
//! process. It checks correctness only (nothing lost, duplicated, refused or
//! closed, and a JSON line comes out), never speed: benchmarks are not tests.
//! One run gives the load generator several URLs (all of them this one
//! in-memory server, so no Redis is needed) to check that splitting members
//! across nodes keeps the accounting exact.
//!
//! The server runs in the test's actix `System`; the load generator runs on
//! its own tokio runtime in its own thread, as the binary does.

use charla_loadgen::churn::ChurnArgs;
use charla_loadgen::idle::IdleArgs;
use charla_loadgen::traffic::{FanoutArgs, RoomsArgs};
use charla_loadgen::{Options, Report, Scenario, Target};
use std::net::TcpListener;
use std::process::Command;
use std::time::Duration;

/// Starts Charla on `127.0.0.1:0` with flood control off; answers its port
/// and the switch that stops it.
async fn start_server() -> (
    u16,
    tokio::sync::oneshot::Sender<()>,
    actix_web::rt::task::JoinHandle<std::io::Result<()>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut config = charla_server::Config::defaults();
    config.msg_rate = 0.0;
    config.log_filter = "warn".into();
    // Two smoke runs share no database file (the durable default is one
    // `charla.db` in the working directory).
    config.database = ":memory:".into();
    let application = charla_server::Application::with_listener(listener, config)
        .await
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = actix_web::rt::spawn(application.run_until_stopped(async {
        let _ = stopped.await;
    }));
    (port, stop, server)
}

/// Runs the scenarios one after another on a separate thread and runtime,
/// against the server at `port` given `nodes` times as a URL.
async fn run_all(port: u16, nodes: usize, scenarios: Vec<Scenario>) -> Vec<Report> {
    let (done, reports) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let mut options = Options::new(format!("ws://127.0.0.1:{port}"), Target::Charla);
        // The same server under distinct spellings, as distinct nodes.
        for node in 1..nodes {
            options
                .urls
                .push(format!("ws://127.0.0.1:{port}{}", "/".repeat(node)));
        }
        options.server_pids = vec![std::process::id()];
        options.duration = Duration::from_millis(1200);
        options.setup = Duration::from_secs(20);
        options.quiet = true;
        let results: Vec<Result<Report, String>> = scenarios
            .iter()
            .map(|scenario| {
                runtime
                    .block_on(charla_loadgen::run(&options, scenario))
                    .map_err(|e| format!("{scenario:?}: {e}"))
            })
            .collect();
        let _ = done.send(results);
    });
    reports
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.unwrap())
        .collect()
}

fn assert_clean(report: &Report) {
    assert!(report.is_clean(), "not clean: {}", report.to_json_line());
    assert_eq!(
        report.received,
        report.expected,
        "{}",
        report.to_json_line()
    );
    let line: serde_json::Value = serde_json::from_str(&report.to_json_line()).unwrap();
    assert_eq!(line["scenario"], report.scenario);
    assert_eq!(line["lost"], 0);
}

#[actix_web::test]
async fn every_scenario_runs_clean_against_the_real_server() {
    let (port, stop, server) = start_server().await;
    let scenarios = Scenario::smoke_set();
    assert_eq!(scenarios.len(), 6, "fanout and rooms twice, idle, churn");
    let reports = run_all(port, 1, scenarios).await;
    for report in &reports {
        assert_clean(report);
        if report.scenario == "idle" {
            assert!(report.rss_per_connection_kib.is_some());
        } else {
            assert!(report.sent > 0, "{}", report.to_json_line());
            assert!(report.latency_ms.is_some());
        }
    }
    let churn = reports.iter().find(|r| r.scenario == "churn").unwrap();
    let cycles = churn.churn.as_ref().unwrap();
    assert!(cycles.cycles > 0, "{}", churn.to_json_line());
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}

#[actix_web::test]
async fn members_split_across_several_urls_are_counted_exactly() {
    let (port, stop, server) = start_server().await;
    let scenarios = vec![
        Scenario::Fanout(FanoutArgs {
            members: 21,
            senders: 3,
            rate: 0.0,
            max: true,
            window: 4,
        }),
        Scenario::Rooms(RoomsArgs {
            rooms: 5,
            members: 4,
            rate: 100.0,
            max: false,
            window: 8,
        }),
        Scenario::Idle(IdleArgs {
            connections: 12,
            room_size: 4,
            settle: Duration::from_millis(100),
        }),
        Scenario::Churn(ChurnArgs {
            rooms: 2,
            members: 3,
            rate: 40.0,
            churn_rate: 20.0,
            dwell: Duration::from_millis(300),
            max_churners: 50,
        }),
    ];
    for report in run_all(port, 3, scenarios).await {
        assert_clean(&report);
        assert_eq!(report.nodes, 3, "{}", report.to_json_line());
        assert_eq!(report.out_of_order, 0, "{}", report.to_json_line());
    }
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}

#[actix_web::test]
async fn the_binary_prints_one_json_line() {
    let (port, stop, server) = start_server().await;
    let binary = env!("CARGO_BIN_EXE_charla-loadgen");
    let output = actix_web::rt::task::spawn_blocking(move || {
        Command::new(binary)
            .args([
                "--url",
                &format!("ws://127.0.0.1:{port}"),
                "--duration-secs",
                "0.8",
                "--quiet",
                "--strict",
                "rooms",
                "--rooms",
                "4",
                "--members",
                "3",
                "--rate",
                "40",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    let line: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(line["scenario"], "rooms");
    assert_eq!(line["target"], "charla");
    assert_eq!(line["lost"], 0);
    assert_eq!(line["duplicated"], 0);
    assert_eq!(line["out_of_order"], 0);
    assert_eq!(line["nodes"], 1);
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}

#[actix_web::test]
async fn the_binary_takes_several_urls_and_server_pids() {
    let (port, stop, server) = start_server().await;
    let binary = env!("CARGO_BIN_EXE_charla-loadgen");
    let pid = std::process::id().to_string();
    let output = actix_web::rt::task::spawn_blocking(move || {
        let url = format!("ws://127.0.0.1:{port}");
        Command::new(binary)
            .args([
                "--url",
                &url,
                "--url",
                &format!("{url}/,{url}//"),
                "--server-pid",
                &format!("{pid},{pid}"),
                "--duration-secs",
                "0.5",
                "--quiet",
                "--strict",
                "fanout",
                "--members",
                "7",
                "--senders",
                "2",
                "--rate",
                "40",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let line: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(line["nodes"], 3);
    assert_eq!(line["lost"], 0);
    assert!(line["server_cpu_s"].is_number(), "{stdout}");
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}
