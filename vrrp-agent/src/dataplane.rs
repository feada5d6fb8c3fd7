//! The XDP fast path: loads the embedded program, attaches it (driver mode, then SKB mode), and
//! gives the agent its maps: which instances to watch (`INSTANCES`), the last valid advert per
//! instance with its kernel arrival time (`PEERS`), ARP seen for our VIPs (`VIPS`), and the ring
//! buffer of adverts the election must see at once (`EVENTS`).
use std::net::Ipv4Addr;

use aya::{
    maps::{HashMap, MapData, RingBuf},
    programs::{
        tc::{SchedClassifierLinkId, TcAttachOptions},
        xdp::XdpLinkId,
        LinkOrder, SchedClassifier, TcAttachType, Xdp, XdpMode,
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

/// An attachment, to detach it again.
#[derive(Debug)]
pub enum Link {
    Xdp(XdpLinkId),
    Tc(SchedClassifierLinkId),
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
        if !skb_only {
            match program.attach_to_if_index(ifindex, XdpMode::Driver) {
                Ok(id) => return Ok((Attached::Driver, Link::Xdp(id))),
                Err(e) => tracing::debug!(ifindex, error = %e, "XDP driver mode unavailable"),
            }
        }
        let id = program.attach_to_if_index(ifindex, XdpMode::Skb)?;
        Ok((Attached::Skb, Link::Xdp(id)))
    }

    /// Attaches at TC ingress of `ifname` (in this thread's network namespace) through a tcx
    /// link (Linux 6.6+), so it goes away with the process as XDP does. Older kernels only have
    /// clsact filters, which a killed process would leave behind: not used.
    pub fn attach_tc(&mut self, ifname: &str) -> Result<(Attached, Link), DataplaneError> {
        let tcx = TcAttachOptions::TcxOrder(LinkOrder::default());
        let id = self
            .tc()?
            .attach_with_options(ifname, TcAttachType::Ingress, tcx)
            .map_err(DataplaneError::Tc)?;
        Ok((Attached::Tc, Link::Tc(id)))
    }

    /// Detaches from an interface (a gone interface's link is already detached by the kernel).
    pub fn detach(&mut self, link: Link) -> Result<(), DataplaneError> {
        match link {
            Link::Xdp(id) => self.xdp()?.detach(id)?,
            Link::Tc(id) => self.tc()?.detach(id)?,
        }
        Ok(())
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
