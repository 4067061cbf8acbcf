//! The command line as a pipeline stage: a reader that stops early ends
//! `tcmu-wasm` quietly, as it would `ls`, instead of a panic.

use std::io::Read;
use std::process::{Command, Stdio};

#[test]
fn a_closed_pipe_ends_the_output_without_a_panic() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tcmu-wasm"))
        // One line per check as it runs: most are written after the hang-up.
        .args(["check", "--handler", "file"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read one byte, then hang up, as `| head -c 1` does.
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 1];
    stdout.read_exact(&mut first).unwrap();
    drop(stdout);
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    let status = child.wait().unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(status.success() || std::os::unix::process::ExitStatusExt::signal(&status) == Some(13), "{status:?}");
}
