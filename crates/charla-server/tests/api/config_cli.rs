//! The binary's configuration surface (docs/protocol.md, "Configuration"):
//! every setting is a flag and an environment variable (rule 26), `--help`
//! documents them, and a bad value stops start-up with a message naming the
//! variable.

use std::process::Command;

const VARIABLES: [&str; 17] = [
    "PORT",
    "CHARLA_HOST",
    "CHARLA_OUTBOX_FRAMES",
    "CHARLA_API_TOKEN",
    "CHARLA_ALLOWED_ORIGINS",
    "CHARLA_HEARTBEAT_SECS",
    "CHARLA_CLIENT_TIMEOUT_SECS",
    "CHARLA_MAX_FRAME_BYTES",
    "CHARLA_MAX_ROOMS_PER_SESSION",
    "CHARLA_HISTORY",
    "CHARLA_JOIN_HISTORY",
    "CHARLA_MSG_RATE",
    "CHARLA_MSG_BURST",
    "CHARLA_MAX_ROOMS",
    "CHARLA_MAX_CONNECTIONS",
    "RUST_LOG",
    "LOG_FORMAT",
];

fn charla() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_charla"));
    for variable in VARIABLES {
        command.env_remove(variable);
    }
    command
}

#[test]
fn help_documents_every_setting_as_a_flag_and_a_variable() {
    let output = charla().arg("--help").output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for variable in VARIABLES {
        assert!(
            help.contains(&format!("[env: {variable}")),
            "{variable} missing from\n{help}"
        );
    }
    for flag in [
        "--port",
        "--msg-rate",
        "--heartbeat-secs",
        "--max-rooms-per-session",
        "--rust-log",
    ] {
        assert!(help.contains(flag), "{flag} missing from\n{help}");
    }
}

#[test]
fn a_bad_value_stops_startup_naming_the_variable() {
    for (variable, value) in [
        ("PORT", "eighty"),
        ("CHARLA_MSG_RATE", "fast"),
        ("CHARLA_HEARTBEAT_SECS", "-1"),
        ("CHARLA_MAX_CONNECTIONS", "many"),
        ("CHARLA_MSG_RATE", "-3"),
        ("CHARLA_HISTORY", "0"),
    ] {
        let output = charla()
            .env(variable, value)
            .env("PORT", if variable == "PORT" { value } else { "0" })
            .output()
            .unwrap();
        assert!(
            !output.status.success(),
            "{variable}={value} must stop start-up"
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(variable), "{variable}={value}: {stderr}");
    }
}

#[test]
fn contradicting_timings_name_both_variables() {
    let output = charla()
        .env("CHARLA_HEARTBEAT_SECS", "30")
        .env("CHARLA_CLIENT_TIMEOUT_SECS", "10")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("CHARLA_CLIENT_TIMEOUT_SECS") && stderr.contains("CHARLA_HEARTBEAT_SECS"),
        "{stderr}"
    );
}

#[test]
fn the_flag_wins_over_the_variable() {
    // A valid flag overrides an invalid variable: start-up gets past parsing
    // and fails only on the contradiction given by the flags.
    let output = charla()
        .env("CHARLA_MSG_RATE", "fast")
        .args([
            "--msg-rate",
            "5",
            "--heartbeat-secs",
            "9",
            "--client-timeout-secs",
            "3",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("CHARLA_MSG_RATE"), "{stderr}");
    assert!(stderr.contains("CHARLA_CLIENT_TIMEOUT_SECS"), "{stderr}");
}
