//! Builds the pod sandbox ("pause") program, pause/pause.c, as a small static
//! executable in OUT_DIR; the agent embeds it and makes its sandbox image from it
//! at start (src/pause.rs), so a node needs no prebuilt or pulled image.
//! Needs a C compiler with a static libc (Debian: gcc and libc6-dev); `CC`
//! names another compiler.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let source = PathBuf::from("pause/pause.c");
    println!("cargo:rerun-if-changed={}", source.display());
    println!("cargo:rerun-if-env-changed=CC");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("pause");
    let cc = std::env::var("CC").unwrap_or_else(|_| "gcc".into());
    let result = Command::new(&cc)
        .args(["-static", "-Os", "-s", "-o"])
        .arg(&out)
        .arg(&source)
        .output();
    match result {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "building the sandbox program with `{cc} -static`: {}\n{}(a static libc is needed: Debian's libc6-dev)",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => panic!(
            "running `{cc}` to build the sandbox program (pause/pause.c): {e}; install gcc and libc6-dev, or set CC"
        ),
    }
}
