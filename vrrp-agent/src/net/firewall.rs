//! `no_accept` (RFC 9568 Accept_Mode off): a master that does not own its VIPs drops packets
//! addressed to them. Like keepalived, this is a firewall rule: one nftables table of our own,
//! `inet vrrp_agent`, with the VIPs in a set per family and a drop rule on the input hook.
//! Neighbour Solicitations and Advertisements for an IPv6 VIP pass (RFC 9568 §6.1): without
//! them neighbours could not reach the master's address at all.
//!
//! The set is static, written at start and reload only: the input hook sees only packets for
//! local addresses, and a VIP is local only while its instance is master, so "drop while master"
//! needs no change on the failover path (no fork of `nft` while the VIP moves).

use std::{collections::BTreeSet, fmt::Write as _, io, net::IpAddr, process::Stdio};

use tokio::{io::AsyncWriteExt as _, process::Command};

const TABLE: &str = "inet vrrp_agent";

#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    #[error(
        "no_accept needs nftables: cannot run `nft` ({0}); install it (Debian: apt-get install \
         nftables) or use `accept`"
    )]
    NoNft(#[source] io::Error),
    #[error("`nft` refused the no_accept rules: {0}; check that the kernel has nf_tables")]
    Refused(String),
}

/// The agent's nftables table; the drop set holds the VIPs of the `no_accept` instances.
#[derive(Debug, Default)]
pub struct Firewall {
    /// The VIPs dropped now; empty when the table does not exist.
    dropped: BTreeSet<IpAddr>,
}

impl Firewall {
    /// Makes the table drop exactly `vips`, in one nft transaction (no moment without the rule).
    /// An empty set deletes the table, also one left by an agent that was killed; without `nft`
    /// installed nothing can be left, so that is not an error then.
    pub async fn apply(&mut self, vips: BTreeSet<IpAddr>) -> Result<(), FirewallError> {
        // "table" first makes the delete succeed whether the table exists or not.
        let mut script = format!("table {TABLE}\ndelete table {TABLE}\n");
        if !vips.is_empty() {
            script += &table(&vips);
        }
        match nft(&script).await {
            Err(FirewallError::NoNft(_)) if vips.is_empty() => {}
            result => result?,
        }
        self.dropped = vips;
        Ok(())
    }

    /// The VIPs whose traffic is dropped while their instance is master.
    pub fn dropped(&self) -> &BTreeSet<IpAddr> {
        &self.dropped
    }
}

/// The table for `vips` (not empty): a set and its rules per family that has VIPs (nft refuses
/// an empty element list).
fn table(vips: &BTreeSet<IpAddr>) -> String {
    let (mut sets, mut rules) = (String::new(), String::new());
    let families = [
        (false, "no_accept", "ipv4_addr", "ip daddr @no_accept drop"),
        (
            true,
            "no_accept6",
            "ipv6_addr",
            "ip6 daddr @no_accept6 icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept\n\
             \t\tip6 daddr @no_accept6 drop",
        ),
    ];
    for (v6, name, kind, rule) in families {
        let elements: Vec<String> = vips
            .iter()
            .filter(|a| a.is_ipv6() == v6)
            .map(IpAddr::to_string)
            .collect();
        if !elements.is_empty() {
            let elements = elements.join(", ");
            let _ = writeln!(
                sets,
                "\tset {name} {{ type {kind}; elements = {{ {elements} }}; }}"
            );
            let _ = writeln!(rules, "\t\t{rule}");
        }
    }
    format!(
        "table {TABLE} {{\n{sets}\tchain input {{\n\
         \t\ttype filter hook input priority filter; policy accept;\n{rules}\t}}\n}}\n"
    )
}

async fn nft(script: &str) -> Result<(), FirewallError> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(FirewallError::NoNft)?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    stdin
        .write_all(script.as_bytes())
        .await
        .map_err(FirewallError::NoNft)?;
    drop(stdin);
    let out = child
        .wait_with_output()
        .await
        .map_err(FirewallError::NoNft)?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(FirewallError::Refused(stderr.trim().replace('\n', "; ")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_set_per_family_and_neighbour_discovery_passes() {
        let v4: IpAddr = "198.51.100.10".parse().unwrap();
        let v6: IpAddr = "2001:db8::50".parse().unwrap();
        assert_eq!(
            table(&[v4].into()),
            "table inet vrrp_agent {\n\
             \tset no_accept { type ipv4_addr; elements = { 198.51.100.10 }; }\n\
             \tchain input {\n\
             \t\ttype filter hook input priority filter; policy accept;\n\
             \t\tip daddr @no_accept drop\n\
             \t}\n}\n"
        );
        let both = table(&[v4, v6].into());
        assert!(both.contains("set no_accept6 { type ipv6_addr; elements = { 2001:db8::50 }; }"));
        let accept = both
            .find("nd-neighbor-solicit, nd-neighbor-advert } accept")
            .unwrap();
        assert!(
            accept < both.find("ip6 daddr @no_accept6 drop").unwrap(),
            "{both}"
        );
    }
}
