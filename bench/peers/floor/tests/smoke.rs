//! The floor peer against the load generator's smoke set (every scenario,
//! scaled down, as in charla-loadgen's own smoke test): the peer the
//! benchmark divides Charla's figures by must itself lose, duplicate and
//! reorder nothing, or the ratio means nothing. Correctness only, never
//! speed. The binary is started on a free loopback port (`PORT=0`) and
//! stopped by its PID.

use charla_loadgen::{Options, Scenario, Target};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The running floor binary; killed when dropped, even if the test fails.
struct Floor {
    child: Child,
    url: String,
}

impl Drop for Floor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_floor() -> Floor {
    let mut child = Command::new(env!("CARGO_BIN_EXE_charla-floor"))
        .env("PORT", "0")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let address = line
        .trim()
        .strip_prefix("charla-floor listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .to_owned();
    Floor {
        child,
        url: format!("ws://{address}"),
    }
}

#[test]
fn every_scenario_runs_clean_against_the_floor_peer() {
    let floor = start_floor();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut options = Options::new(floor.url.clone(), Target::Floor);
    options.server_pids = vec![floor.child.id()];
    options.duration = Duration::from_millis(1000);
    options.setup = Duration::from_secs(20);
    options.quiet = true;
    let scenarios = Scenario::smoke_set();
    for scenario in &scenarios {
        let report = runtime
            .block_on(charla_loadgen::run(&options, scenario))
            .unwrap_or_else(|e| panic!("{scenario:?}: {e}"));
        let line = report.to_json_line();
        assert!(report.is_clean(), "not clean: {line}");
        assert_eq!(report.received, report.expected, "{line}");
        assert_eq!(report.out_of_order, 0, "{line}");
        assert!(line.contains(r#""target":"floor""#), "{line}");
        if report.scenario != "idle" {
            assert!(report.sent > 0, "{line}");
        }
    }
}
