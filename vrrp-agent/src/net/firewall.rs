//! `no_accept` (RFC 9568 Accept_Mode off): a master that does not own its VIPs drops packets
//! addressed to them. Like keepalived, this is a firewall rule: one nftables table of our own,
//! `inet vrrp_agent`, with the VIPs in a set and a drop rule on the input hook.
//!
//! The set is static, written at start and reload only: the input hook sees only packets for
//! local addresses, and a VIP is local only while its instance is master, so "drop while master"
//! needs no change on the failover path (no fork of `nft` while the VIP moves).

use std::{collections::BTreeSet, fmt::Write as _, io, net::Ipv4Addr, process::Stdio};

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
    dropped: BTreeSet<Ipv4Addr>,
}

impl Firewall {
    /// Makes the table drop exactly `vips`, in one nft transaction (no moment without the rule).
    /// An empty set deletes the table, also one left by an agent that was killed; without `nft`
    /// installed nothing can be left, so that is not an error then.
    pub async fn apply(&mut self, vips: BTreeSet<Ipv4Addr>) -> Result<(), FirewallError> {
        // "table" first makes the delete succeed whether the table exists or not.
        let mut script = format!("table {TABLE}\ndelete table {TABLE}\n");
        if !vips.is_empty() {
            let elements: Vec<String> = vips.iter().map(Ipv4Addr::to_string).collect();
            let _ = write!(
                script,
                "table {TABLE} {{\n\
                 \tset no_accept {{ type ipv4_addr; elements = {{ {} }}; }}\n\
                 \tchain input {{\n\
                 \t\ttype filter hook input priority filter; policy accept;\n\
                 \t\tip daddr @no_accept drop\n\
                 \t}}\n\
                 }}\n",
                elements.join(", ")
            );
        }
        match nft(&script).await {
            Err(FirewallError::NoNft(_)) if vips.is_empty() => {}
            result => result?,
        }
        self.dropped = vips;
        Ok(())
    }

    /// The VIPs whose traffic is dropped while their instance is master.
    pub fn dropped(&self) -> &BTreeSet<Ipv4Addr> {
        &self.dropped
    }
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
