//! The `lab` binary as a person uses it (README "Run your own commands
//! behind a NAT"): up, list, exec, a second up of the same name, down; and
//! the one-shot `run` passing its command's exit code through. Skips (and
//! says so) when the machine cannot run labs, unless ICE_LAB_REQUIRED=1.

use std::path::Path;
use std::process::{Command, Output};

use e2e::lab::availability;
use e2e::workspace_bin;
use serde_json::Value;

fn lab(args: &[&str]) -> Output {
    // Build the servers beside `lab`, where it looks for them.
    workspace_bin("stun-server");
    workspace_bin("ice-probe");
    Command::new(env!("CARGO_BIN_EXE_lab"))
        .args(args)
        .output()
        .expect("run lab")
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn skip() -> bool {
    if let Err(why) = availability() {
        if std::env::var("ICE_LAB_REQUIRED").is_ok_and(|v| v == "1") {
            panic!("lab unavailable: {why} (and ICE_LAB_REQUIRED=1)");
        }
        eprintln!("SKIPPED (lab unavailable: {why})");
        return true;
    }
    false
}

#[test]
fn up_exec_down_as_the_readme_shows() {
    if skip() {
        return;
    }
    let name = format!("t{}", std::process::id());
    let up = lab(&[
        "up",
        &name,
        "--nat",
        "full-cone",
        "--nat",
        "symmetric",
        "--stun-server",
    ]);
    assert_eq!(up.status.code(), Some(0), "{}", text(&up));
    let out = String::from_utf8_lossy(&up.stdout);
    assert!(out.contains(&format!("lab-{name}-host2")), "{out}");
    assert!(out.contains("198.51.100.2"), "{out}");

    let list = lab(&["list"]);
    assert!(
        String::from_utf8_lossy(&list.stdout)
            .lines()
            .any(|l| l == name),
        "{}",
        text(&list)
    );
    // The same name again is refused while it is up.
    let again = lab(&["up", &name, "--nat", "none"]);
    assert_eq!(again.status.code(), Some(1), "{}", text(&again));
    assert!(text(&again).contains("already up"), "{}", text(&again));

    // ice-probe (found beside `lab`) behind the symmetric NAT, against the
    // stun-server that `up` left running.
    let nat = lab(&[
        "exec",
        &name,
        "host2",
        "--",
        "ice-probe",
        "nat",
        "stun:203.0.113.1:3478",
        "--json",
    ]);
    let v: Value = serde_json::from_slice(&nat.stdout).unwrap_or(Value::Null);
    assert_eq!(v["nat_type"], "symmetric", "{}", text(&nat));
    assert!(
        v["mapped_address"]
            .as_str()
            .is_some_and(|a| a.starts_with("198.51.100.2:")),
        "{v}"
    );

    let down = lab(&["down", &name]);
    assert_eq!(down.status.code(), Some(0), "{}", text(&down));
    assert!(
        !Path::new(&format!("/run/netns/lab-{name}-srv")).exists(),
        "namespaces left after down"
    );
    let gone = lab(&["exec", &name, "host1", "--", "true"]);
    assert_eq!(gone.status.code(), Some(2), "{}", text(&gone));
    assert!(text(&gone).contains("no node"), "{}", text(&gone));
}

#[test]
fn run_passes_the_exit_code_through_and_cleans_up() {
    if skip() {
        return;
    }
    let r = lab(&[
        "run",
        "--nat",
        "udp-blocked",
        "host1",
        "--",
        "sh",
        "-c",
        "exit 7",
    ]);
    assert_eq!(r.status.code(), Some(7), "{}", text(&r));
    let ns = String::from_utf8_lossy(&r.stderr)
        .lines()
        .find_map(|l| l.strip_prefix("lab ").and_then(|l| l.strip_suffix(" up")))
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no 'lab NAME up' line: {}", text(&r)));
    assert!(
        !Path::new(&format!("/run/netns/{ns}-srv")).exists(),
        "run left its lab up"
    );
    let bad = lab(&["run", "--nat", "cone", "host1", "--", "true"]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
    assert!(
        text(&bad).contains("one of none, full-cone"),
        "{}",
        text(&bad)
    );
}
