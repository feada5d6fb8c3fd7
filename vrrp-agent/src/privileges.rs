//! After start the agent keeps only the capabilities it uses while it runs, in its permitted and
//! effective sets. The bounding set stays whole: a script that runs as root (no `script_user`)
//! gets root's capabilities at exec, as under keepalived; one run as a `user` gets none.
use caps::{CapSet, Capability, CapsHashSet};

/// What the running agent still needs, and why.
pub const KEPT: &[(Capability, &str)] = &[
    (
        Capability::CAP_NET_ADMIN,
        "VIPs over netlink, the kernel program attached to an interface that appears, the \
         no_accept firewall table",
    ),
    (
        Capability::CAP_NET_RAW,
        "raw sockets for adverts and gratuitous ARP on an interface that appears",
    ),
    (
        Capability::CAP_BPF,
        "the kernel program's maps (bpf(2) refuses them otherwise when unprivileged BPF is off), \
         and loading it when the first interface appears",
    ),
    (
        Capability::CAP_PERFMON,
        "loading the kernel program as a privileged one (the verifier refuses some of its \
         pointer arithmetic to others)",
    ),
    (
        Capability::CAP_SYS_NICE,
        "SCHED_RR for the liveness prober thread, started on becoming backup",
    ),
    (
        Capability::CAP_SETUID,
        "running scripts as script_user or a vrrp_script's user",
    ),
    (Capability::CAP_SETGID, "the same, for their groups"),
    (
        Capability::CAP_KILL,
        "stopping a timed-out script that runs as another user",
    ),
];

/// Drops every other capability from this thread's permitted and effective sets. Call it before
/// other threads exist: they inherit the sets of the thread that starts them. Returns what is
/// kept (of what the process had). The inheritable set stays: a service run as a user with
/// `AmbientCapabilities=` passes those of them it keeps on to `nft` and scripts, as systemd
/// means it to.
pub fn drop_unneeded() -> Result<CapsHashSet, caps::errors::CapsError> {
    let had = caps::read(None, CapSet::Permitted)?;
    let keep: CapsHashSet = KEPT
        .iter()
        .map(|(cap, _)| *cap)
        .filter(|cap| had.contains(cap))
        .collect();
    caps::set(None, CapSet::Effective, &keep)?;
    caps::set(None, CapSet::Permitted, &keep)?;
    Ok(keep)
}
