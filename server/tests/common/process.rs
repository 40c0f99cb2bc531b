//! The real `nudge` binary as a child process, shared by the test binaries that need one.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// A command for `nudge` on `127.0.0.1:0` without per-address limits (tests hammer one
/// address), quiet unless something goes wrong. Add the store's flags and spawn it with
/// [`spawn`].
pub fn nudge_command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_nudge"));
    command
        .args(["--bind", "127.0.0.1:0", "--www-dir"])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../www"))
        .args([
            "--write-rate-per-address",
            "0",
            "--max-streams-per-address",
            "0",
            "--stream-open-rate-per-address",
            "0",
        ])
        .stdout(Stdio::piped());
    command
}

/// Spawns `command` and waits for its first stdout line; returns the child and its base URL.
pub fn spawn(command: &mut Command) -> (Child, String) {
    let mut child = command.spawn().expect("nudge starts");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().expect("stdout"))
        .read_line(&mut line)
        .expect("the listening line");
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    (child, base)
}
