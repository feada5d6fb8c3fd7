//! The command line's value parsers and its validation: no panic on any value. The input is
//! split at NUL bytes into the values of the flags that take free text.
#![no_main]

use clap::Parser as _;
use libfuzzer_sys::fuzz_target;
use vrrp_agent::config::cli::Cli;

const FLAGS: [&str; 7] = [
    "--vip",
    "--advert-int",
    "--vrrp-version",
    "--checksum",
    "--garp-delay",
    "--liveness-interval",
    "--max-adopted-interval",
];

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut argv = vec!["vrrp-agent", "--iface", "eth0", "--vrid", "51", "--priority", "100"];
    for (flag, value) in FLAGS.iter().zip(text.split('\0')) {
        argv.extend([*flag, value]);
    }
    if let Ok(cli) = Cli::try_parse_from(argv) {
        let _ = cli.instance.config();
    }
});
