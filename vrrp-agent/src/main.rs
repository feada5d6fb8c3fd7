//! `vrrp-agent`: the binary edge. Parses the command line, opens the I/O, picks the receive path
//! (XDP, else raw socket), and runs the instance until SIGTERM/SIGINT, when it hands over with a
//! priority-0 advert and removes its VIPs.
use std::{io::IsTerminal as _, process::ExitCode};

use anyhow::{Context as _, Result};
use clap::Parser as _;
use tokio::signal::unix::{signal, SignalKind};
use tracing::{error, info, warn};
use vrrp_agent::{
    clock,
    config::{Cli, XdpMode},
    dataplane::{Dataplane, Events},
    election::Timestamp,
    instance::Instance,
    net::{AdvertReceiver, AdvertSender, GarpSender, Interface, LinkMonitor, Netlink, Vips},
};
use vrrp_common::maps::Event;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let config = match Cli::parse().instance() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    // One thread: the election is one state machine per instance and the I/O is small; a single
    // event loop keeps the order of events exact.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Where adverts come from: the XDP program's ring buffer, or a raw socket.
enum Receive {
    // Boxed: the loaded object is large and lives as long as the agent.
    Xdp {
        dataplane: Box<Dataplane>,
        events: Events,
    },
    Socket(AdvertReceiver),
}

async fn run(config: vrrp_agent::config::Instance) -> Result<()> {
    let netlink = Netlink::connect().context("cannot open rtnetlink")?;
    let vip_addrs: Vec<_> = config.vips.iter().map(|v| v.addr).collect();
    let iface = Interface::lookup(&netlink, &config.iface, &vip_addrs).await?;
    let sender = AdvertSender::new(&iface.name, iface.index)?;
    let garp = GarpSender::new(&iface.name, iface.index, iface.mac)?;
    let vips = Vips::new(netlink.clone(), &iface.name, iface.index);
    let mut receive = receive_path(&config, &iface, &sender)?;
    let mut instance = Instance::new(config, iface, sender, garp, vips);
    if let Receive::Xdp { dataplane, .. } = &mut receive {
        dataplane.set_instance(instance.key, instance.kernel_config())?;
        for vip in &instance.config.vips {
            dataplane.watch_vip(vip.addr)?;
        }
    }
    let mut link = LinkMonitor::new(instance.iface.index)?;
    let link_up = link.is_up().await?;
    instance
        .start(link_up, dataplane(&mut receive), clock::now())
        .await?;

    let mut sigterm = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut sigint = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    let mut sigusr1 = signal(SignalKind::user_defined1()).context("SIGUSR1 handler")?;
    let mut batch: Vec<Event> = Vec::new();
    let mut buf = vec![0u8; vrrp_common::maps::MAX_PACKET_V4];
    loop {
        let deadline = instance
            .next_deadline()
            .map(|(_, at)| clock::tokio_instant(at));
        let sleep = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        // Received adverts first: one that is already here must reach the election before a
        // timer that would declare its sender dead.
        tokio::select! {
            biased;
            _ = sigterm.recv() => { info!("SIGTERM: handing over"); break; }
            _ = sigint.recv() => { info!("SIGINT: handing over"); break; }
            _ = sigusr1.recv() => instance.log_status(clock::now(), dataplane(&mut receive).as_deref())?,
            r = recv_batch(&mut receive, &mut batch, &mut buf) => {
                let at_socket = r?;
                match &mut receive {
                    Receive::Xdp { dataplane, .. } => {
                        for ev in batch.drain(..) {
                            if ev.ifindex == instance.key.ifindex {
                                instance.on_packet(ev.packet(), Timestamp(ev.t_ns), Some(dataplane)).await?;
                            }
                        }
                    }
                    Receive::Socket(_) => {
                        if let Some(n) = at_socket {
                            instance.on_packet(&buf[..n], clock::now(), None).await?;
                        }
                    }
                }
            }
            up = link.changed() => instance.on_link(up?, clock::now(), dataplane(&mut receive)).await?,
            () = sleep => instance.on_timers(clock::now(), dataplane(&mut receive)).await?,
        }
    }
    instance
        .shutdown(clock::now(), dataplane(&mut receive))
        .await
}

fn dataplane(receive: &mut Receive) -> Option<&mut Dataplane> {
    match receive {
        Receive::Xdp { dataplane, .. } => Some(dataplane),
        Receive::Socket(_) => None,
    }
}

/// Waits for input: XDP events into `batch`, or one packet from the socket into `buf` (its length).
async fn recv_batch(
    receive: &mut Receive,
    batch: &mut Vec<Event>,
    buf: &mut [u8],
) -> Result<Option<usize>> {
    match receive {
        Receive::Xdp { events, .. } => {
            events.recv(batch).await.context("XDP event ring buffer")?;
            Ok(None)
        }
        Receive::Socket(socket) => Ok(Some(socket.recv(buf).await.context("raw socket receive")?)),
    }
}

/// The XDP fast path when it can be had, else the raw socket; one log line says which is live.
fn receive_path(
    config: &vrrp_agent::config::Instance,
    iface: &Interface,
    sender: &AdvertSender,
) -> Result<Receive> {
    if config.xdp != XdpMode::Off {
        let attached = Dataplane::load().and_then(|mut d| {
            let mode = d.attach(iface.index, config.xdp)?;
            let events = d.events()?;
            Ok((d, mode, events))
        });
        match attached {
            Ok((dataplane, mode, events)) => {
                info!(iface = %iface.name, "receive path: XDP in {mode}");
                // The NIC's multicast filter must still let the VRRP group in.
                sender.join_vrrp_group()?;
                return Ok(Receive::Xdp {
                    dataplane: Box::new(dataplane),
                    events,
                });
            }
            Err(e) => warn!(iface = %iface.name, "receive path: raw socket, XDP unavailable: {e}"),
        }
    } else {
        info!(iface = %iface.name, "receive path: raw socket (--xdp off)");
    }
    Ok(Receive::Socket(AdvertReceiver::new(
        &iface.name,
        iface.index,
    )?))
}
