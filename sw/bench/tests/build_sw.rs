//! `scripts/build-sw.sh` never ships an unoptimised ServiceWorker without being asked to, and
//! says what it built.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Mutex;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// One build at a time: two would write the same files in target/ and www/gen/.
static BUILD: Mutex<()> = Mutex::new(());

fn build_sw(command: &mut Command) -> (Output, String) {
    let _one = BUILD
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let output = command
        .current_dir(root())
        .env_remove("NUDGE_SW_UNOPTIMISED")
        .output()
        .expect("running scripts/build-sw.sh");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output, stderr)
}

#[test]
fn the_build_fails_when_wasm_opt_is_missing_and_cannot_be_installed() {
    // No binaryen where the build looks for it, and an npm that fails, first on PATH.
    let empty = tempfile::tempdir().unwrap();
    let bin = tempfile::tempdir().unwrap();
    let npm = bin.path().join("npm");
    std::fs::write(
        &npm,
        "#!/bin/sh\necho 'npm: no registry here' >&2\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(&npm, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap()
    );

    let (output, stderr) = build_sw(
        Command::new("scripts/build-sw.sh")
            .env("NUDGE_BINARYEN_DIR", empty.path())
            .env("PATH", path),
    );
    assert!(
        !output.status.success(),
        "built without wasm-opt:\n{stderr}"
    );
    assert!(stderr.contains("wasm-opt is missing"), "{stderr}");
}

#[test]
fn every_build_prints_the_optimised_size() {
    let (output, stderr) = build_sw(&mut Command::new("scripts/build-sw.sh"));
    assert!(output.status.success(), "{stderr}");
    let line = stderr
        .lines()
        .find(|line| line.contains("nudge-sw wasm, optimised by wasm-opt"))
        .unwrap_or_else(|| panic!("no size line:\n{stderr}"));
    assert!(
        line.contains("bytes raw") && line.contains("bytes gzipped"),
        "{line}"
    );
}

#[test]
fn the_bytes_script_decodes_where_the_browser_lacks_from_base64() {
    // Node.js 20 has atob but not Uint8Array.fromBase64: the script's fallback runs, and must
    // give the module that build-sw.sh wrote.
    let (output, stderr) = build_sw(&mut Command::new("scripts/build-sw.sh"));
    assert!(output.status.success(), "{stderr}");
    let script = root().join("www/gen/nudge_sw_wasm.js");
    let check = format!(
        "globalThis.self = globalThis;\n\
         if (Uint8Array.fromBase64) throw new Error('this Node.js has fromBase64');\n\
         require({script:?});\n\
         const bytes = self.NUDGE_SW_WASM;\n\
         if (!(bytes instanceof Uint8Array) || !WebAssembly.validate(bytes)) throw new Error('not a module');\n\
         console.log(bytes.length);",
        script = script.display().to_string()
    );
    let node = Command::new("node")
        .args(["-e", &check])
        .output()
        .expect("running node");
    assert!(
        node.status.success(),
        "{}",
        String::from_utf8_lossy(&node.stderr)
    );
    let decoded: usize = String::from_utf8_lossy(&node.stdout)
        .trim()
        .parse()
        .unwrap();
    let line = stderr
        .lines()
        .find(|line| line.contains("optimised by wasm-opt"))
        .unwrap();
    assert!(
        line.contains(&format!(": {decoded} bytes raw")),
        "decoded {decoded} bytes; the build said: {line}"
    );
}
