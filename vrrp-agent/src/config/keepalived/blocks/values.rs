//! Value parsers: a word to a number, a duration, an address… or what to write instead.
use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    time::Duration,
};

use vrrp_common::Version;

pub(super) fn uint(v: &str, lo: u64, hi: u64) -> Result<u64, String> {
    v.parse()
        .ok()
        .filter(|n| (lo..=hi).contains(n))
        .ok_or_else(|| format!("write a whole number from {lo} to {hi}"))
}

pub(super) fn int(v: &str, lo: i64, hi: i64) -> Result<i64, String> {
    v.parse()
        .ok()
        .filter(|n| (lo..=hi).contains(n))
        .ok_or_else(|| format!("write a whole number from {lo} to {hi}"))
}

pub(super) fn version(v: &str) -> Result<Version, String> {
    match v {
        "2" => Ok(Version::V2),
        "3" => Ok(Version::V3),
        _ => Err("the VRRP version is 2 or 3".into()),
    }
}

/// keepalived's decimal seconds (`1`, `0.5`, `2.71828`), exact to the microsecond.
pub(super) fn seconds(v: &str) -> Result<Duration, String> {
    let bad = || "write seconds, like 1 or 0.5".to_string();
    let (whole, fraction) = v.split_once('.').unwrap_or((v, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() && fraction.is_empty()
        || !digits(whole)
        || !digits(fraction)
        || fraction.len() > 6
    {
        return Err(bad());
    }
    let secs: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad())?
    };
    let micros: u32 = format!("{fraction:0<6}").parse().map_err(|_| bad())?;
    Ok(Duration::from_secs(secs) + Duration::from_micros(micros.into()))
}

/// keepalived's whole seconds, where 0 means off.
pub(super) fn whole_seconds(v: &str) -> Result<Option<Duration>, String> {
    let n = uint(v, 0, u32::MAX.into())?;
    Ok((n > 0).then(|| Duration::from_secs(n)))
}

pub(super) fn iface(v: &str) -> Result<String, String> {
    if v.is_empty() || v.len() > 15 || v.contains(['/', ':']) {
        return Err("not an interface name (at most 15 bytes, no '/' or ':')".into());
    }
    Ok(v.to_string())
}

pub(super) fn ipv4(v: &str) -> Result<Ipv4Addr, String> {
    match v.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => Ok(ip),
        Ok(IpAddr::V6(_)) => Err("an IPv6 address where only IPv4 has a meaning".into()),
        Err(_) => Err("not an IPv4 address".into()),
    }
}

pub(super) fn ip(v: &str) -> Result<IpAddr, String> {
    v.parse().map_err(|_| "not an IPv4 or IPv6 address".into())
}

/// rtnetlink scopes by name (iproute2's rt_scopes) or number.
pub(super) fn scope(v: &str) -> Result<u8, String> {
    match v {
        "global" => Ok(0),
        "site" => Ok(200),
        "link" => Ok(253),
        "host" => Ok(254),
        "nowhere" => Ok(255),
        _ => uint(v, 0, 255)
            .map(|n| n as u8)
            .map_err(|_| "write global, site, link, host, nowhere or 0 to 255".into()),
    }
}

/// `brd ADDR`, `+` (all host bits set, the default) or `-` (all clear), as `ip addr add`.
pub(super) fn broadcast(
    v: &str,
    addr: Ipv4Addr,
    prefix_len: u8,
) -> Result<Option<Ipv4Addr>, String> {
    match v {
        "+" => Ok(None),
        "-" if prefix_len <= 30 => Ok(Some(Ipv4Addr::from(
            u32::from(addr) & (u32::MAX << (32 - prefix_len)),
        ))),
        "-" => Err("a /31 or /32 has no broadcast address".into()),
        _ => ipv4(v).map(Some),
    }
}

/// A process name as the kernel keeps it (`/proc/PID/comm`, what `ps -C` and `pidof` match).
pub(super) fn process(v: &str) -> Result<String, String> {
    if v.is_empty() || v.len() > 15 || v.contains('/') {
        return Err(
            "write the process name as ps -C matches it (at most 15 bytes, no path)".into(),
        );
    }
    Ok(v.to_string())
}

pub(super) fn socket_addr(v: &str) -> Result<SocketAddr, String> {
    v.parse()
        .map_err(|_| "write ADDR:PORT with an IP address, like 127.0.0.1:80 or [::1]:80".into())
}

/// `http://ADDR[:PORT][/PATH]`, the address an IP (the `host` option sets the Host header).
pub(super) fn url_parts(v: &str) -> Result<(SocketAddr, String), String> {
    let rest = v.strip_prefix("http://").ok_or_else(|| {
        "write http://ADDR[:PORT]/PATH (plain HTTP; https is not supported)".to_string()
    })?;
    let (authority, path) = rest.find('/').map_or((rest, "/"), |i| rest.split_at(i));
    let bare = authority.trim_start_matches('[').trim_end_matches(']');
    let addr = authority
        .parse()
        .or_else(|_| bare.parse().map(|ip| SocketAddr::new(ip, 80)))
        .map_err(|_| {
            format!("{authority}: write an IP address, with the name in host NAME if needed")
        })?;
    Ok((addr, path.to_string()))
}
