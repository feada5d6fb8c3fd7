//! keepalived.conf, lexer to model: no panic, no hang, on any text. The input is up to three
//! files split at NUL bytes, written to a directory of this process: keepalived.conf, then
//! a.conf and b.conf that it may include (with any pattern, nesting or loop).
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("vrrp-fuzz-conf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    let mut files = data.splitn(3, |b| *b == 0);
    let main = String::from_utf8_lossy(files.next().unwrap_or_default()).into_owned();
    for name in ["a.conf", "b.conf"] {
        let _ = std::fs::write(dir().join(name), files.next().unwrap_or_default());
    }
    let _ = vrrp_agent::config::keepalived::parse_str(&dir().join("keepalived.conf"), &main);
});
