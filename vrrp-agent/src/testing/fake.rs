//! A recording fake of an instance's outputs, for the instance's and the agent's tests.
use std::{
    cell::RefCell,
    collections::{BTreeMap, BTreeSet},
    net::{IpAddr, Ipv4Addr},
    rc::Rc,
};

use vrrp_common::{
    advert::decode,
    liveness::{BestProber, Session, Softnet},
    maps::{InstanceEntry, PeerRecord},
};

use crate::{
    clock,
    config::{Garp, Vip},
    election::{State, Timestamp},
    instance::{Follow, Outputs},
    net::Links,
};

/// The advert source every fake binds with.
pub const US: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1));

/// What the fake was asked to do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Out {
    Bind(u32),
    Unbind,
    Advert {
        priority: u8,
        dst: IpAddr,
    },
    AddVip(IpAddr),
    RemoveVip(IpAddr),
    Garp {
        count: u8,
    },
    Kernel {
        role: u8,
        priority: u8,
    },
    Notify(State, u8),
    /// The liveness channel: probing this master with this priority of ours, at full rate
    /// (established) or slowly; or stopped.
    Probe(Option<(Ipv4Addr, u8, bool)>),
}

/// The fakes' state, shared by every instance of a test and with the test itself.
#[derive(Default)]
pub struct World {
    /// What each instance did, and when (the agent's clock).
    pub out: Vec<(String, Out, Timestamp)>,
    /// The addresses on the interfaces.
    pub addrs: BTreeSet<IpAddr>,
    /// VIP adds that fail before one succeeds.
    pub failing_adds: u32,
    /// The kernel's record (the XDP path), or none (raw socket).
    pub peer: Option<PeerRecord>,
    /// Reading the kernel's record fails with this.
    pub peer_error: Option<String>,
    /// The next read of the kernel's record panics (a bug, as far as the agent can tell).
    pub peer_panics: bool,
    /// Binding instances whose name is a key fails with the value.
    pub bind_errors: BTreeMap<String, String>,
    /// The interface has no IPv4 address yet: binding waits.
    pub no_address: bool,
    /// The kernel's liveness session.
    pub session: Option<Session>,
    /// When the prober sent its probes.
    pub probes_sent: Vec<Timestamp>,
    /// The host's receive backlogs, unless unreadable.
    pub backlog: Vec<Softnet>,
    pub backlog_unreadable: bool,
    /// Becomes the kernel's record as the backlogs are read: the advert came through the
    /// frames a CPU processed between the agent's reads.
    pub peer_once_backlog_read: Option<PeerRecord>,
}

impl World {
    /// What was recorded since the last call, without the instance names and times.
    pub fn take(&mut self) -> Vec<Out> {
        self.out.drain(..).map(|(_, out, _)| out).collect()
    }
}

/// One instance's outputs, recorded in the shared [`World`].
#[derive(Clone)]
pub struct Fake {
    pub name: String,
    pub world: Rc<RefCell<World>>,
}

impl Default for Fake {
    fn default() -> Self {
        Self::new("VI_1", Rc::default())
    }
}

impl Fake {
    pub fn new(name: &str, world: Rc<RefCell<World>>) -> Self {
        Self {
            name: name.to_owned(),
            world,
        }
    }

    fn push(&self, out: Out) {
        let at = clock::now();
        self.world
            .borrow_mut()
            .out
            .push((self.name.clone(), out, at));
    }

    /// What was recorded since the last call.
    pub fn take(&self) -> Vec<Out> {
        self.world.borrow_mut().take()
    }

    pub fn world(&self) -> std::cell::RefMut<'_, World> {
        self.world.borrow_mut()
    }
}

impl Outputs for Fake {
    type Error = String;

    async fn bind(&mut self, links: &Links) -> Result<Option<IpAddr>, String> {
        if let Some(e) = self.world.borrow().bind_errors.get(&self.name).cloned() {
            return Err(e);
        }
        if self.world.borrow().no_address {
            return Ok(None);
        }
        self.push(Out::Bind(links.get("eth0").unwrap().index));
        Ok(Some(US))
    }

    fn unbind(&mut self) {
        self.push(Out::Unbind);
    }

    async fn send_advert(&mut self, packet: &[u8]) -> Result<(), String> {
        let advert = decode(packet).map_err(|e| e.to_string())?;
        assert_eq!(advert.src, US, "the source bind() returned");
        self.push(Out::Advert {
            priority: advert.priority,
            dst: advert.dst,
        });
        Ok(())
    }

    async fn add_vip(&mut self, vip: &Vip) -> Result<(), String> {
        {
            let mut world = self.world.borrow_mut();
            if world.failing_adds > 0 {
                world.failing_adds -= 1;
                return Err("EPERM".into());
            }
            world.addrs.insert(vip.addr);
        }
        self.push(Out::AddVip(vip.addr));
        Ok(())
    }

    async fn remove_vip(&mut self, vip: &Vip) -> Result<(), String> {
        self.world.borrow_mut().addrs.remove(&vip.addr);
        self.push(Out::RemoveVip(vip.addr));
        Ok(())
    }

    async fn has_vip(&mut self, vip: &Vip) -> Result<bool, String> {
        Ok(self.world.borrow().addrs.contains(&vip.addr))
    }

    async fn announce(&mut self, _vips: &[Vip], count: u8, _garp: Garp) {
        self.push(Out::Garp { count });
    }

    fn set_kernel(&mut self, entry: &InstanceEntry) -> Result<(), String> {
        self.push(Out::Kernel {
            role: entry.role,
            priority: entry.priority,
        });
        Ok(())
    }

    fn peer(&self) -> Result<Option<PeerRecord>, String> {
        let mut world = self.world.borrow_mut();
        assert!(!std::mem::take(&mut world.peer_panics), "injected panic");
        match &world.peer_error {
            Some(e) => Err(e.clone()),
            None => Ok(world.peer),
        }
    }

    fn records_adverts(&self) -> bool {
        self.world.borrow().peer.is_some()
    }

    fn notify(&mut self, to: State, priority: u8) {
        self.push(Out::Notify(to, priority));
    }

    fn probe(&mut self, follow: Option<Follow>) -> Result<(), String> {
        self.push(Out::Probe(
            follow.map(|f| (f.master, f.priority, f.established)),
        ));
        Ok(())
    }

    fn session(&self) -> Option<Session> {
        self.world.borrow().session
    }

    fn reflector(&self) -> Option<BestProber> {
        None
    }

    fn backlog(&self) -> Option<Vec<Softnet>> {
        let mut world = self.world.borrow_mut();
        if let Some(record) = world.peer_once_backlog_read.take() {
            world.peer = Some(record);
        }
        (!world.backlog_unreadable).then(|| world.backlog.clone())
    }

    /// Every probe counted from `World::probes_sent` (`after`, `until`) went out in the window.
    fn probes_sent(&self, after: Timestamp, until: Timestamp) -> usize {
        self.world
            .borrow()
            .probes_sent
            .iter()
            .filter(|&&t| t > after && t <= until)
            .count()
    }
}
