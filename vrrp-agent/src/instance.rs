//! One VRRP instance wired to the world: receive path → election → actions. The election decides,
//! this module only carries out (adverts, VIPs, gratuitous ARP, the kernel's view of our role) and
//! logs one line per transition with its reason.
use std::{net::Ipv4Addr, time::Duration};

use anyhow::{Context as _, Result};
use tracing::{info, warn};
use vrrp_common::{
    advert::{decode_ipv4, encode_ipv4, AdvertSpec, Auth, ChecksumForm, Expect},
    maps::{InstanceConfig, InstanceKey, ROLE_BACKUP, ROLE_IDLE, ROLE_MASTER},
    wire::{MAX_ADVERT_LEN_V4, VRRP_MULTICAST_V4},
};

use crate::{
    config,
    dataplane::Dataplane,
    election::{Action, Event, Machine, Reason, State, Timer, Timestamp},
    net::{AdvertSender, GarpSender, Interface, Vips},
};

/// Rejected adverts are logged at most this often per instance (the first at once).
const REJECT_LOG_EVERY: Duration = Duration::from_secs(10);

pub struct Instance {
    pub config: config::Instance,
    pub iface: Interface,
    pub key: InstanceKey,
    machine: Machine,
    sender: AdvertSender,
    garp: GarpSender,
    vips: Vips,
    ip_id: u16,
    /// Kernel arrival time of the last advert fed to the election.
    last_advert: Timestamp,
    rejected: RejectLog,
}

#[derive(Default)]
struct RejectLog {
    last: Option<Timestamp>,
    suppressed: u64,
}

impl Instance {
    pub fn new(
        config: config::Instance,
        iface: Interface,
        sender: AdvertSender,
        garp: GarpSender,
        vips: Vips,
    ) -> Self {
        let machine = Machine::new(crate::election::Config {
            vrid: config.vrid,
            version: config.version,
            priority: config.priority,
            advert_interval: config.advert_interval,
            preempt: config.preempt,
            preempt_delay: config.preempt_delay,
            accept_mode: true,
            primary_addr: iface.primary,
            garp_repeat: config.garp.repeat_after,
        });
        Self {
            key: InstanceKey::new(iface.index, config.vrid),
            config,
            iface,
            machine,
            sender,
            garp,
            vips,
            ip_id: 0,
            last_advert: Timestamp::default(),
            rejected: RejectLog::default(),
        }
    }

    pub fn state(&self) -> State {
        self.machine.state()
    }

    pub fn next_deadline(&self) -> Option<(Timer, Timestamp)> {
        self.machine.next_deadline()
    }

    /// What the XDP program needs to check and classify this instance's adverts.
    pub fn kernel_config(&self) -> InstanceConfig {
        let (auth_type, auth_data) = match self.config.auth_pass {
            Some(pass) => (vrrp_common::wire::VRRP_AUTH_PASS, pass),
            None => (vrrp_common::wire::VRRP_AUTH_NONE, [0; 8]),
        };
        InstanceConfig {
            local_addr: self.iface.primary.octets(),
            auth_data,
            interval_cs: self.interval_cs(),
            version: self.config.version.number(),
            priority: self.machine.priority(),
            role: match self.machine.state() {
                State::Master => ROLE_MASTER,
                State::Backup => ROLE_BACKUP,
                State::Initialize | State::Fault => ROLE_IDLE,
            },
            auth_type,
            _pad: [0; 2],
        }
    }

    fn interval_cs(&self) -> u16 {
        (self.config.advert_interval.as_millis() / 10) as u16
    }

    fn expect(&self) -> Expect {
        Expect {
            vrid: self.config.vrid,
            version: self.config.version,
            interval_cs: self.interval_cs(),
            auth: self.config.auth_pass.map_or(Auth::None, Auth::Pass),
            local_addr: self.iface.primary,
        }
    }

    /// Removes VIPs an earlier run left behind (a crash or kill -9 skips the cleanup), then
    /// starts the election; with the link down it waits in FAULT, as keepalived does.
    pub async fn start(
        &mut self,
        link_up: bool,
        mut dp: Option<&mut Dataplane>,
        now: Timestamp,
    ) -> Result<()> {
        for vip in &self.config.vips {
            if self.vips.present(vip.addr).await? {
                self.vips.remove(vip).await?;
                warn!(vrid = self.config.vrid, vip = %vip.addr, "removed a stale VIP left by an earlier run");
            }
        }
        if !link_up {
            self.handle(Event::LinkDown, now, dp.as_deref_mut()).await?;
        }
        self.handle(Event::Startup, now, dp).await
    }

    /// One status line (SIGUSR1, as keepalived dumps its state): election state and, on the XDP
    /// path, what the kernel recorded of the peers' adverts.
    pub fn log_status(&self, now: Timestamp, dp: Option<&Dataplane>) -> Result<()> {
        let (vrid, state, priority) = (self.config.vrid, self.state(), self.machine.priority());
        let interval = self.machine.master_adver_interval();
        let Some(dp) = dp else {
            info!(vrid, %state, priority, ?interval, "status: raw-socket receive path");
            return Ok(());
        };
        let peer = dp.peer(&self.key)?;
        let ago = Duration::from_nanos(now.0.saturating_sub(peer.t_ns));
        info!(
            vrid,
            %state,
            priority,
            ?interval,
            "status: kernel saw {} adverts (last from {} prio {}, interval {} cs, {ago:?} ago), \
             rejected {}",
            peer.count,
            Ipv4Addr::from(peer.src),
            peer.priority,
            peer.interval_cs,
            peer.rejected,
        );
        Ok(())
    }

    /// The interface lost or regained its carrier (or was set down or up).
    pub async fn on_link(
        &mut self,
        up: bool,
        now: Timestamp,
        dp: Option<&mut Dataplane>,
    ) -> Result<()> {
        let event = if up { Event::LinkUp } else { Event::LinkDown };
        self.handle(event, now, dp).await
    }

    /// A received IPv4 packet (from the XDP ring buffer or the raw socket) that claims to be a VRRP
    /// advert for this instance: the receive checks, then the election.
    pub async fn on_packet(
        &mut self,
        packet: &[u8],
        at: Timestamp,
        dp: Option<&mut Dataplane>,
    ) -> Result<()> {
        let advert = match decode_ipv4(packet).and_then(|a| a.check(&self.expect()).map(|()| a)) {
            Ok(a) => a,
            // Other groups share the segment: normal, not worth a log line.
            Err(vrrp_common::DecodeError::VridMismatch { .. }) => return Ok(()),
            Err(e) => {
                self.log_reject(&e, packet, at);
                return Ok(());
            }
        };
        let event = Event::Advert {
            src: advert.src,
            priority: advert.priority,
            interval: Duration::from_millis(u64::from(advert.interval_cs) * 10),
        };
        self.last_advert = self.last_advert.max(at);
        self.handle(event, at, dp).await
    }

    fn log_reject(&mut self, error: &vrrp_common::DecodeError, packet: &[u8], at: Timestamp) {
        let r = &mut self.rejected;
        let due = r
            .last
            .is_none_or(|t| at.0.saturating_sub(t.0) >= REJECT_LOG_EVERY.as_nanos() as u64);
        if !due {
            r.suppressed += 1;
            return;
        }
        let src = packet
            .get(12..16)
            .map(|s| Ipv4Addr::new(s[0], s[1], s[2], s[3]));
        warn!(
            vrid = self.config.vrid,
            src = ?src,
            suppressed = r.suppressed,
            "ignored advert: {error}"
        );
        r.last = Some(at);
        r.suppressed = 0;
    }

    /// Fires the timers that are due. Before declaring the master down it asks the kernel whether
    /// an advert arrived that the agent has not processed yet (a late wake-up under load), and
    /// feeds that first, stamped with its arrival time.
    pub async fn on_timers(
        &mut self,
        now: Timestamp,
        mut dp: Option<&mut Dataplane>,
    ) -> Result<()> {
        while let Some((timer, at)) = self.machine.next_deadline().filter(|&(_, at)| at <= now) {
            if timer == Timer::MasterDown {
                if let Some(d) = dp.as_deref_mut() {
                    let peer = d.peer(&self.key)?;
                    let arrived = Timestamp(peer.t_ns);
                    if peer.count > 0 && arrived > self.last_advert {
                        self.last_advert = arrived;
                        let event = Event::Advert {
                            src: Ipv4Addr::from(peer.src),
                            priority: peer.priority,
                            interval: Duration::from_millis(u64::from(peer.interval_cs) * 10),
                        };
                        self.handle(event, arrived, dp.as_deref_mut()).await?;
                        if self.machine.deadline(timer) != Some(at) {
                            continue;
                        }
                    }
                }
            }
            self.handle(Event::TimerExpired(timer), now, dp.as_deref_mut())
                .await?;
        }
        Ok(())
    }

    pub async fn shutdown(&mut self, now: Timestamp, dp: Option<&mut Dataplane>) -> Result<()> {
        self.handle(Event::Shutdown, now, dp).await
    }

    async fn handle(
        &mut self,
        event: Event,
        now: Timestamp,
        mut dp: Option<&mut Dataplane>,
    ) -> Result<()> {
        for (action, reason) in self.machine.handle(event, now) {
            self.act(action, reason, dp.as_deref_mut()).await?;
        }
        Ok(())
    }

    async fn act(
        &mut self,
        action: Action,
        reason: Reason,
        dp: Option<&mut Dataplane>,
    ) -> Result<()> {
        let vrid = self.config.vrid;
        match action {
            Action::Transition { from, to } => {
                info!(vrid, iface = %self.iface.name, "{from} -> {to}: {reason}");
                if let Some(d) = dp {
                    d.set_instance(self.key, self.kernel_config())?;
                }
            }
            Action::SendAdvert { priority } => self.send_advert(priority).await?,
            Action::AddVips { accept: _ } => {
                for vip in &self.config.vips {
                    self.vips.add(vip).await?;
                }
            }
            Action::RemoveVips => {
                for vip in &self.config.vips {
                    self.vips.remove(vip).await?;
                }
            }
            Action::SendGarp => self.send_garp().await,
            // The driver sleeps until `next_deadline()`; the machine keeps the deadlines.
            Action::ArmTimer { .. } | Action::CancelTimer(_) => {}
        }
        Ok(())
    }

    async fn send_advert(&mut self, priority: u8) -> Result<()> {
        let addrs: Vec<Ipv4Addr> = self.config.vips.iter().map(|v| v.addr).collect();
        // The kernel fills in its own id for 0; keep ours, as keepalived does.
        self.ip_id = self.ip_id.checked_add(1).unwrap_or(1);
        let spec = AdvertSpec {
            version: self.config.version,
            vrid: self.config.vrid,
            priority,
            interval_cs: self.interval_cs(),
            auth: self.config.auth_pass.map_or(Auth::None, Auth::Pass),
            src: self.iface.primary,
            dst: VRRP_MULTICAST_V4,
            ip_id: self.ip_id,
            checksum_form: match self.config.checksum {
                config::ChecksumForm::Pseudo => ChecksumForm::WithPseudoHeader,
                config::ChecksumForm::Message => ChecksumForm::MessageOnly,
            },
            addrs: &addrs,
        };
        let mut buf = [0; MAX_ADVERT_LEN_V4];
        let len = encode_ipv4(&spec, &mut buf).context("cannot encode advert")?;
        // A lost advert is covered by the next one; log and go on rather than stop the agent.
        if let Err(e) = self.sender.send(&buf[..len]).await {
            warn!(vrid = self.config.vrid, "cannot send advert: {e}");
        }
        Ok(())
    }

    async fn send_garp(&mut self) {
        for vip in &self.config.vips {
            for _ in 0..self.config.garp.count {
                if let Err(e) = self.garp.announce(vip.addr).await {
                    warn!(vrid = self.config.vrid, vip = %vip.addr, "cannot send gratuitous ARP: {e}");
                }
            }
        }
    }
}
