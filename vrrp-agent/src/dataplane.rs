//! The XDP fast path: loads the embedded program, attaches it (driver mode, then SKB mode), and
//! gives the agent its maps: which instances to watch (`INSTANCES`), the last valid advert per
//! instance with its kernel arrival time (`PEERS`), ARP seen for our VIPs (`VIPS`), and the ring
//! buffer of adverts the election must see at once (`EVENTS`).
use std::{
    io,
    net::Ipv4Addr,
    os::fd::{FromRawFd as _, OwnedFd, RawFd},
};

use aya::{
    maps::{HashMap, MapData, RingBuf},
    programs::{
        links::FdLink, tc::TcAttachOptions, LinkOrder, SchedClassifier, TcAttachType, Xdp, XdpMode,
    },
    Ebpf, EbpfLoader,
};
use thiserror::Error;
use tokio::io::unix::AsyncFd;
use vrrp_common::{
    liveness::{BestProber, Session},
    maps::{
        ArpRecord, InstanceEntry, InstanceKey, PeerRecord, RingEvent, Watch, MAP_EVENTS,
        MAP_INSTANCES, MAP_LIVENESS, MAP_PEERS, MAP_PROBERS, MAP_VIPS, MAP_WATCH, PROGRAM_NAME,
        PROGRAM_TC,
    },
};

#[cfg(not(vrrp_no_ebpf))]
static OBJECT: Option<&[u8]> = Some(aya::include_bytes_aligned!(concat!(
    env!("OUT_DIR"),
    "/vrrp"
)));
#[cfg(vrrp_no_ebpf)]
static OBJECT: Option<&[u8]> = None;

/// Whether this binary carries its kernel program (built with nightly rust-src and bpf-linker).
pub const BUILT_IN: bool = cfg!(not(vrrp_no_ebpf));

#[derive(Debug, Error)]
pub enum DataplaneError {
    #[error(
        "this binary was built without its XDP program (no nightly rust-src or bpf-linker at build \
         time): run `cargo xtask setup` and rebuild, or run with --xdp off"
    )]
    NotBuilt,
    #[error("cannot load the XDP program (needs root or CAP_BPF + CAP_NET_ADMIN): {0}")]
    Load(#[source] aya::EbpfError),
    #[error("XDP program: {0}")]
    Program(#[from] aya::programs::ProgramError),
    #[error("cannot attach at TC ingress (needs Linux 6.6 or later for tcx links): {0}")]
    Tc(#[source] aya::programs::ProgramError),
    #[error("BPF map {name}: {source}")]
    Map {
        name: &'static str,
        #[source]
        source: aya::maps::MapError,
    },
    #[error("{0} missing from the XDP object (build mismatch: rebuild the agent)")]
    Missing(&'static str),
    #[error("cannot watch the XDP event ring buffer: {0}")]
    Poll(#[source] std::io::Error),
    #[error("cannot take over the program's link: {0}")]
    Link(String),
}

/// Where the program runs on an interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attached {
    /// XDP in the driver.
    Driver,
    /// Generic XDP.
    Skb,
    /// TC ingress.
    Tc,
}

impl std::fmt::Display for Attached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Driver => "XDP in native (driver) mode",
            Self::Skb => "XDP in SKB (generic) mode",
            Self::Tc => "TC ingress",
        })
    }
}

/// An attachment: the program's link, with its file given a second descriptor above all
/// others ([`FIRST_RELEASED`]); dropped, it detaches.
///
/// Why the descriptor: a dying process's files are released in reverse order of their
/// descriptors (the kernel closes the table upward and runs the releases last queued first),
/// and a packet socket's release waits for an RCU grace period (7–20 ms on a test VM). Released
/// first, the link stops the liveness reflector within a millisecond of a `kill -9`, whatever
/// sockets the agent opened after attaching.
#[derive(Debug)]
pub struct Link {
    _aya: FdLink,
    _high: Option<OwnedFd>,
}

/// The lowest descriptor a link's file is copied to (the table then holds 512 slots, 4 KiB).
const FIRST_RELEASED: libc::c_int = 512;

impl Link {
    fn new(link: FdLink) -> Self {
        let high = link
            .info()
            .map_err(|e| io::Error::other(e.to_string()))
            .and_then(|info| descriptor_of(info.id()))
            .and_then(copy_high);
        if let Err(e) = &high {
            // The link still detaches with the process, only later.
            tracing::warn!("cannot copy the program's link above fd {FIRST_RELEASED} (a killed agent then stops reflecting liveness probes later): {e}");
        }
        Self {
            _aya: link,
            _high: high.ok(),
        }
    }
}

/// Our descriptor of BPF link `id`: aya keeps it private, and asking the kernel for another
/// (`BPF_LINK_GET_FD_BY_ID`) needs CAP_SYS_ADMIN; /proc/self/fdinfo names each link's id.
fn descriptor_of(id: u32) -> io::Result<RawFd> {
    let wanted = id.to_string();
    for entry in std::fs::read_dir("/proc/self/fdinfo")? {
        let entry = entry?;
        let Ok(info) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        let ours = info
            .lines()
            .filter_map(|l| l.strip_prefix("link_id:"))
            .any(|v| v.trim() == wanted);
        if let (true, Some(fd)) = (
            ours,
            entry.file_name().to_str().and_then(|n| n.parse().ok()),
        ) {
            return Ok(fd);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        format!("no descriptor of BPF link {id}"),
    ))
}

/// A second descriptor of `fd`'s file, at [`FIRST_RELEASED`] or above.
fn copy_high(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: `fd` is open (aya's link holds it); F_DUPFD_CLOEXEC only creates a descriptor.
    let high = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, FIRST_RELEASED) };
    if high < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `high` is a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(high) })
}

/// The loaded program and its maps. The program detaches when this is dropped or the process
/// dies (aya attaches through a bpf_link), so a crashed agent leaves nothing on the interface.
pub struct Dataplane {
    ebpf: Ebpf,
    instances: HashMap<MapData, InstanceKey, InstanceEntry>,
    peers: HashMap<MapData, InstanceKey, PeerRecord>,
    vips: HashMap<MapData, [u8; 4], ArpRecord>,
    sessions: HashMap<MapData, InstanceKey, Session>,
    probers: HashMap<MapData, InstanceKey, BestProber>,
    watches: HashMap<MapData, InstanceKey, Watch>,
}

fn map_err(name: &'static str) -> impl FnOnce(aya::maps::MapError) -> DataplaneError {
    move |source| DataplaneError::Map { name, source }
}

impl Dataplane {
    pub fn load() -> Result<Self, DataplaneError> {
        let object = OBJECT.ok_or(DataplaneError::NotBuilt)?;
        // No kernel BTF: the program reads no kernel structures (no CO-RE relocations), and
        // parsing /sys/kernel/btf/vmlinux would cost ~20 MB of memory, most of it never returned.
        let mut ebpf = EbpfLoader::new()
            .btf(None)
            .load(object)
            .map_err(DataplaneError::Load)?;
        let mut take =
            |name: &'static str| ebpf.take_map(name).ok_or(DataplaneError::Missing(name));
        let instances = HashMap::try_from(take(MAP_INSTANCES)?).map_err(map_err(MAP_INSTANCES))?;
        let peers = HashMap::try_from(take(MAP_PEERS)?).map_err(map_err(MAP_PEERS))?;
        let vips = HashMap::try_from(take(MAP_VIPS)?).map_err(map_err(MAP_VIPS))?;
        let sessions = HashMap::try_from(take(MAP_LIVENESS)?).map_err(map_err(MAP_LIVENESS))?;
        let probers = HashMap::try_from(take(MAP_PROBERS)?).map_err(map_err(MAP_PROBERS))?;
        let watches = HashMap::try_from(take(MAP_WATCH)?).map_err(map_err(MAP_WATCH))?;
        let program: &mut Xdp = ebpf
            .program_mut(PROGRAM_NAME)
            .ok_or(DataplaneError::Missing(PROGRAM_NAME))?
            .try_into()?;
        program.load()?;
        Ok(Self {
            ebpf,
            instances,
            peers,
            vips,
            sessions,
            probers,
            watches,
        })
    }

    /// Attaches XDP to `ifindex` in driver mode, falling back to SKB mode (`skb_only` skips the
    /// driver). The error of the last attempt is returned when neither works; the caller then
    /// uses the raw-socket path.
    pub fn attach_xdp(
        &mut self,
        ifindex: u32,
        skb_only: bool,
    ) -> Result<(Attached, Link), DataplaneError> {
        let program = self.xdp()?;
        let mut attached = None;
        if !skb_only {
            match program.attach_to_if_index(ifindex, XdpMode::Driver) {
                Ok(id) => attached = Some((Attached::Driver, id)),
                Err(e) => tracing::debug!(ifindex, error = %e, "XDP driver mode unavailable"),
            }
        }
        let (how, id) = match attached {
            Some(attached) => attached,
            None => (
                Attached::Skb,
                program.attach_to_if_index(ifindex, XdpMode::Skb)?,
            ),
        };
        // A bpf_link on every kernel with bpf_timer (5.15): never a netlink attachment.
        let link = FdLink::try_from(program.take_link(id)?)
            .map_err(|e| DataplaneError::Link(e.to_string()))?;
        Ok((how, Link::new(link)))
    }

    /// Attaches at TC ingress of `ifname` (in this thread's network namespace) through a tcx
    /// link (Linux 6.6+), so it goes away with the process as XDP does. Older kernels only have
    /// clsact filters, which a killed process would leave behind: not used.
    pub fn attach_tc(&mut self, ifname: &str) -> Result<(Attached, Link), DataplaneError> {
        let tcx = TcAttachOptions::TcxOrder(LinkOrder::default());
        let program = self.tc()?;
        let id = program
            .attach_with_options(ifname, TcAttachType::Ingress, tcx)
            .map_err(DataplaneError::Tc)?;
        let link = FdLink::try_from(program.take_link(id)?)
            .map_err(|e| DataplaneError::Link(e.to_string()))?;
        Ok((Attached::Tc, Link::new(link)))
    }

    fn xdp(&mut self) -> Result<&mut Xdp, DataplaneError> {
        Ok(self
            .ebpf
            .program_mut(PROGRAM_NAME)
            .ok_or(DataplaneError::Missing(PROGRAM_NAME))?
            .try_into()?)
    }

    /// The TC program, loaded into the kernel on first use (most hosts never need it).
    fn tc(&mut self) -> Result<&mut SchedClassifier, DataplaneError> {
        let program: &mut SchedClassifier = self
            .ebpf
            .program_mut(PROGRAM_TC)
            .ok_or(DataplaneError::Missing(PROGRAM_TC))?
            .try_into()?;
        if program.fd().is_err() {
            program.load()?;
        }
        Ok(program)
    }

    /// Starts recording adverts for `key`, or updates what the kernel knows of the instance
    /// (role and priority change with each transition).
    pub fn set_instance(
        &mut self,
        key: InstanceKey,
        config: InstanceEntry,
    ) -> Result<(), DataplaneError> {
        if self.peers.get(&key, 0).is_err() {
            self.peers
                .insert(key, PeerRecord::default(), 0)
                .map_err(map_err(MAP_PEERS))?;
        }
        // Inserted once: rewriting the element would cancel its running timer.
        if self.watches.get(&key, 0).is_err() {
            self.watches
                .insert(key, Watch::default(), 0)
                .map_err(map_err(MAP_WATCH))?;
        }
        self.instances
            .insert(key, config, 0)
            .map_err(map_err(MAP_INSTANCES))
    }

    /// Stops watching `key` (the instance stopped, or its interface went away).
    pub fn remove_instance(&mut self, key: &InstanceKey) -> Result<(), DataplaneError> {
        self.instances.remove(key).map_err(map_err(MAP_INSTANCES))?;
        // Sessions and probers exist only where the liveness channel ran; a Master_Down timer
        // left running only fires for an instance the agent no longer has.
        let _ = self.sessions.remove(key);
        let _ = self.probers.remove(key);
        let _ = self.watches.remove(key);
        self.peers.remove(key).map_err(map_err(MAP_PEERS))
    }

    /// Starts a liveness session with master `peer` for `key`: the kernel restarts its silence
    /// timer for `detect_ns` with each reflected probe (a session replaced starts afresh).
    pub fn start_session(
        &mut self,
        key: InstanceKey,
        peer: Ipv4Addr,
        detect_ns: u64,
    ) -> Result<(), DataplaneError> {
        let session = Session {
            peer: peer.octets(),
            detect_ns,
            ..Session::default()
        };
        self.sessions
            .insert(key, session, 0)
            .map_err(map_err(MAP_LIVENESS))
    }

    /// Ends it (its timer with it); none running is no error.
    pub fn stop_session(&mut self, key: &InstanceKey) {
        let _ = self.sessions.remove(key);
    }

    /// The kernel's record of the session, if one runs.
    pub fn session(&self, key: &InstanceKey) -> Option<Session> {
        self.sessions.get(key, 0).ok()
    }

    /// The reflector's record of the probers of `key`, once one probed.
    pub fn reflector(&self, key: &InstanceKey) -> Option<BestProber> {
        self.probers.get(key, 0).ok()
    }

    /// The last valid advert the kernel saw for `key` (all zero before the first).
    pub fn peer(&self, key: &InstanceKey) -> Result<PeerRecord, DataplaneError> {
        self.peers.get(key, 0).map_err(map_err(MAP_PEERS))
    }

    /// Watches ARP whose sender address is `vip` (from the first call), and makes `mac` its owner
    /// while we are master (ARP from another MAC is a conflict), or nobody (`None`).
    pub fn set_vip_owner(
        &mut self,
        vip: Ipv4Addr,
        mac: Option<[u8; 6]>,
    ) -> Result<(), DataplaneError> {
        let key = vip.octets();
        let mut record = self.vips.get(&key, 0).unwrap_or_default();
        record.owner_mac = mac.unwrap_or_default();
        self.vips.insert(key, record, 0).map_err(map_err(MAP_VIPS))
    }

    /// Stops watching ARP for `vip` (its instance stopped, or left its interface).
    pub fn unwatch_vip(&mut self, vip: Ipv4Addr) -> Result<(), DataplaneError> {
        self.vips.remove(&vip.octets()).map_err(map_err(MAP_VIPS))
    }

    /// The ring buffer of urgent adverts, ready for the async loop. Call once.
    pub fn events(&mut self) -> Result<Events, DataplaneError> {
        let map = self
            .ebpf
            .take_map(MAP_EVENTS)
            .ok_or(DataplaneError::Missing(MAP_EVENTS))?;
        let ring = RingBuf::try_from(map).map_err(map_err(MAP_EVENTS))?;
        // SAFETY: the RingBuf owns its map fd and keeps it open, unchanged, until it is dropped,
        // which only happens together with the AsyncFd.
        let fd = unsafe { AsyncFd::register(ring) }.map_err(|e| DataplaneError::Poll(e.into()))?;
        Ok(Events(fd))
    }
}

/// What the XDP program pushed: adverts for the election (copies of the whole IPv4 packet) and
/// ARP conflicts on our VIPs.
pub struct Events(AsyncFd<RingBuf<MapData>>);

impl Events {
    /// Waits for the next batch of events and appends them to `out`.
    pub async fn recv(&mut self, out: &mut Vec<RingEvent>) -> std::io::Result<()> {
        let mut guard = self.0.readable_mut().await?;
        let ring = guard.get_inner_mut();
        while let Some(item) = ring.next() {
            // A copy: ring records are only 8-byte aligned by convention, and events are rare.
            if let Ok(event) = bytemuck::try_pod_read_unaligned::<RingEvent>(&item) {
                out.push(event);
            }
        }
        guard.clear_ready();
        Ok(())
    }
}

#[cfg(test)]
mod tests;
