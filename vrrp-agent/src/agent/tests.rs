//! The real loop against a fake host: inputs injected through the channel, outputs recorded, the
//! election timers on the real clock (100 ms adverts keep them short). No root: error paths are
//! driven through the fakes, never through a real failure of the kernel.

use std::{cell::RefCell, future::Future, rc::Rc};

use super::*;
use crate::{
    config::keepalived::load,
    net::Change,
    testing::{
        fake::{Fake, Out, World},
        Logs, TempDir,
    },
};

const VIP: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 100));
/// Longer than any step below takes with 100 ms adverts (Master_Down_Interval 0.36 s).
const SETTLE: Duration = Duration::from_secs(3);

struct FakeHost {
    world: Rc<RefCell<World>>,
    /// The interfaces as the kernel has them (a test may change them without an event).
    links: Rc<RefCell<Links>>,
    /// Every set of VIPs given to the firewall, in order.
    no_accept: Rc<RefCell<Vec<BTreeSet<IpAddr>>>>,
}

impl Host for FakeHost {
    type Outputs = Fake;

    fn outputs(&mut self, config: &VrrpInstance, _global: &Global) -> Fake {
        Fake::new(&config.name, self.world.clone())
    }

    async fn links(&mut self) -> Result<Links> {
        Ok(self.links.borrow().clone())
    }

    async fn set_no_accept(&mut self, vips: BTreeSet<IpAddr>) -> Result<()> {
        self.no_accept.borrow_mut().push(vips);
        Ok(())
    }
}

fn eth0(index: u32) -> Link {
    Link {
        index,
        mac: Some([2, 0, 0, 0, 0, 1]),
        veth: false,
        up: true,
    }
}

fn instance(name: &str, vrid: u8, priority: u8, extra: &str) -> String {
    format!(
        "vrrp_instance {name} {{\ninterface eth0\nvirtual_router_id {vrid}\npriority {priority}\n\
         advert_int 0.1\nversion 3\nvirtual_ipaddress {{\n198.51.100.{vrid}/24\n}}\n{extra}\n}}\n"
    )
}

/// An agent running keepalived.conf `text` (written to a file, so SIGHUP can reload it).
struct Test {
    world: Rc<RefCell<World>>,
    links: Rc<RefCell<Links>>,
    no_accept: Rc<RefCell<Vec<BTreeSet<IpAddr>>>>,
    dir: TempDir,
    tx: Inputs,
    rx: Option<mpsc::Receiver<Input>>,
    agent: Option<Agent<FakeHost>>,
}

impl Test {
    async fn new(text: &str, links: Links) -> Self {
        let dir = TempDir::new();
        let path = dir.0.join("keepalived.conf");
        std::fs::write(&path, text).unwrap();
        let loaded = load(&path).expect("valid configuration");
        let world = Rc::new(RefCell::new(World::default()));
        let no_accept = Rc::default();
        let links = Rc::new(RefCell::new(links));
        let host = FakeHost {
            world: world.clone(),
            links: links.clone(),
            no_accept: Rc::clone(&no_accept),
        };
        let agent = Agent::new(host, &loaded, Some(path)).await.unwrap();
        let (tx, rx) = mpsc::channel(16);
        Self {
            world,
            links,
            no_accept,
            dir,
            tx,
            rx: Some(rx),
            agent: Some(agent),
        }
    }

    /// Rewrites the configuration file (for a reload).
    fn rewrite(&self, text: &str) {
        std::fs::write(self.dir.0.join("keepalived.conf"), text).unwrap();
    }

    /// Runs the agent's loop beside `script` until the loop ends; its result.
    async fn run<F: Future<Output = ()>>(
        &mut self,
        script: impl FnOnce(Inputs) -> F,
    ) -> Result<()> {
        let agent = self.agent.take().unwrap();
        let rx = self.rx.take().unwrap();
        let (result, ()) = tokio::join!(agent.run(rx), script(self.tx.clone()));
        result
    }

    /// What instance `name` did, in order.
    fn outputs(&self, name: &str) -> Vec<Out> {
        let world = self.world.borrow();
        world
            .out
            .iter()
            .filter(|(n, _, _)| n == name)
            .map(|(_, o, _)| o.clone())
            .collect()
    }
}

/// Polls `cond` on the world until it holds (the loop runs meanwhile).
async fn until(world: &Rc<RefCell<World>>, what: &str, cond: impl Fn(&World) -> bool) {
    let wait = async {
        while !cond(&world.borrow()) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(SETTLE, wait)
        .await
        .unwrap_or_else(|_| panic!("not within {SETTLE:?}: {what}"));
}

fn became_master(name: &'static str) -> impl Fn(&World) -> bool {
    move |w| {
        w.out
            .iter()
            .any(|(n, o, _)| n == name && *o == Out::Notify(State::Master, o_prio(o)))
    }
}

fn o_prio(out: &Out) -> u8 {
    match out {
        Out::Notify(_, p) => *p,
        _ => 0,
    }
}

fn links() -> Links {
    [("eth0".to_owned(), eth0(7))].into_iter().collect()
}

fn goodbye() -> Out {
    Out::Advert {
        priority: 0,
        dst: std::net::IpAddr::V4(vrrp_common::wire::VRRP_MULTICAST_V4),
    }
}

fn said_goodbye(out: &[Out], vip: IpAddr) -> bool {
    let bye = out.iter().position(|o| *o == goodbye());
    let removed = out.iter().rposition(|o| *o == Out::RemoveVip(vip));
    matches!((bye, removed), (Some(b), Some(r)) if b < r)
}

/// A fatal error (an input task died: the agent would no longer hear its peers) ends the loop
/// with that error, after the hand-over: priority-0 advert, VIPs removed, firewall emptied.
#[tokio::test]
async fn fatal_error_hands_over_then_exits_with_it() {
    let text = instance("VI_1", 51, 200, "no_accept");
    let mut t = Test::new(&text, links()).await;
    let world = t.world.clone();
    let result = t
        .run(|tx| async move {
            until(&world, "VI_1 master", became_master("VI_1")).await;
            let dead = anyhow!("raw socket receive: Network is down");
            tx.send(Input::Failed(dead)).await.unwrap();
        })
        .await;
    let err = result.unwrap_err();
    assert!(err.to_string().contains("Network is down"), "{err:#}");
    let vip = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 51));
    assert!(
        said_goodbye(&t.outputs("VI_1"), vip),
        "{:?}",
        t.outputs("VI_1")
    );
    let firewall = t.no_accept.borrow();
    assert_eq!(
        firewall.first().map(BTreeSet::len),
        Some(0),
        "a stale table goes first"
    );
    assert!(firewall.iter().any(|set| set.contains(&vip)));
    assert_eq!(
        firewall.last(),
        Some(&BTreeSet::new()),
        "the table goes at the end"
    );
}

/// SIGTERM: the same hand-over, and a clean exit.
#[tokio::test]
async fn stop_signal_hands_over_and_exits_cleanly() {
    let mut t = Test::new(&instance("VI_1", 51, 200, ""), links()).await;
    let world = t.world.clone();
    let result = t
        .run(|tx| async move {
            until(&world, "VI_1 master", became_master("VI_1")).await;
            tx.send(Input::Signal(Signal::Stop("SIGTERM")))
                .await
                .unwrap();
        })
        .await;
    result.unwrap();
    let out = t.outputs("VI_1");
    assert!(
        said_goodbye(&out, std::net::IpAddr::V4(Ipv4Addr::new(198, 51, 100, 51))),
        "{out:?}"
    );
    assert_eq!(out.last(), Some(&Out::Unbind), "{out:?}");
}

/// A panic in the loop is a bug, but still no exit without the hand-over.
#[tokio::test]
async fn panic_in_the_loop_still_hands_over() {
    let mut t = Test::new(&instance("VI_1", 51, 200, ""), links()).await;
    let world = t.world.clone();
    let result = t
        .run(|tx| async move {
            until(&world, "VI_1 master", became_master("VI_1")).await;
            world.borrow_mut().peer_panics = true;
            // SIGUSR1 reads the kernel's record for the status line.
            tx.send(Input::Signal(Signal::Status)).await.unwrap();
        })
        .await;
    let err = result.unwrap_err();
    assert!(
        err.to_string().contains("BUG: the event loop panicked"),
        "{err:#}"
    );
    let out = t.outputs("VI_1");
    assert!(
        said_goodbye(&out, std::net::IpAddr::V4(Ipv4Addr::new(198, 51, 100, 51))),
        "{out:?}"
    );
}

/// Recoverable: a status line that cannot read the kernel's record says so, and the loop goes on.
#[tokio::test]
async fn unreadable_status_is_recoverable() {
    let logs = Logs::capture();
    let mut t = Test::new(&instance("VI_1", 51, 200, ""), links()).await;
    let world = t.world.clone();
    let result = t
        .run(|tx| async move {
            until(&world, "VI_1 master", became_master("VI_1")).await;
            world.borrow_mut().peer_error = Some("map gone".into());
            tx.send(Input::Signal(Signal::Status)).await.unwrap();
            let adverts = |w: &World| {
                w.out
                    .iter()
                    .filter(|(_, o, _)| matches!(o, Out::Advert { .. }))
                    .count()
            };
            let before = adverts(&world.borrow());
            until(&world, "more adverts", |w| adverts(w) > before + 2).await;
            tx.send(Input::Signal(Signal::Stop("SIGTERM")))
                .await
                .unwrap();
        })
        .await;
    result.unwrap();
    assert_eq!(
        logs.count("cannot read the kernel's record: map gone"),
        1,
        "{}",
        logs.text()
    );
}

/// A reload that cannot be applied (a check script that does not exist, an instance whose
/// interface cannot be opened, a syntax error) is refused whole: the running instance keeps
/// its VIP and keeps advertising, nothing new starts, and the agent stays up.
#[tokio::test]
async fn reload_that_cannot_be_applied_changes_nothing() {
    let logs = Logs::capture();
    let running = instance("VI_1", 51, 200, "");
    let mut t = Test::new(&running, links()).await;
    let world = t.world.clone();
    let missing_script = format!(
        "vrrp_script chk {{\nscript /nonexistent/check.sh\n}}\n{running}{}",
        instance("VI_2", 52, 100, "track_script {\nchk\n}")
    );
    let unopenable = running.clone() + &instance("VI_3", 53, 100, "");
    world
        .borrow_mut()
        .bind_errors
        .insert("VI_3".into(), "Operation not permitted".into());
    let syntax = running.clone() + "vrrp_instance {\n";
    let files = [missing_script, unopenable, syntax];
    let dir = t.dir.0.join("keepalived.conf");
    let result = t
        .run(|tx| async move {
            until(&world, "VI_1 master", became_master("VI_1")).await;
            for text in files {
                std::fs::write(&dir, text).unwrap();
                tx.send(Input::Signal(Signal::Reload)).await.unwrap();
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            tx.send(Input::Signal(Signal::Stop("SIGTERM")))
                .await
                .unwrap();
        })
        .await;
    result.unwrap();
    let text = logs.text();
    assert_eq!(
        logs.count("still running the previous configuration"),
        3,
        "{text}"
    );
    assert!(
        text.contains("keepalived.conf:1: vrrp_script chk: /nonexistent/check.sh"),
        "{text}"
    );
    assert!(
        text.contains("vrrp_instance VI_3: Operation not permitted"),
        "{text}"
    );
    let out = t.outputs("VI_1");
    let first_goodbye = out.iter().position(|o| *o == goodbye());
    assert_eq!(
        first_goodbye,
        out.iter().rposition(|o| *o == goodbye()),
        "one goodbye"
    );
    assert!(
        out.iter()
            .rposition(|o| matches!(o, Out::Advert { priority: 200, .. }))
            < first_goodbye
    );
    assert!(t.outputs("VI_2").is_empty() && t.outputs("VI_3").is_empty());
}

/// Adverts never pause for a reload: a new instance whose check takes 0.8 s to answer waits in
/// INIT for it, while the running master keeps its 100 ms adverts (the old loop awaited every
/// check's first result and stalled the master into a takeover).
#[tokio::test]
async fn reload_with_a_slow_check_does_not_pause_adverts() {
    let running = instance("VI_1", 51, 200, "");
    let mut t = Test::new(&running, links()).await;
    let slow = t.dir.script("slow.sh", "sleep 0.8", 0o755);
    let reloaded = format!(
        "vrrp_script slow {{\nscript {slow}\ninterval 5\ntimeout 3\n}}\n{running}{}",
        instance("VI_2", 52, 100, "track_script {\nslow\n}")
    );
    t.rewrite(&reloaded);
    let world = t.world.clone();
    let result = t
        .run(|tx| async move {
            until(&world, "VI_1 master", became_master("VI_1")).await;
            tx.send(Input::Signal(Signal::Reload)).await.unwrap();
            let started = |w: &World| {
                w.out
                    .iter()
                    .any(|(n, o, _)| n == "VI_2" && matches!(o, Out::Notify(..)))
            };
            until(&world, "VI_2 started after its check", started).await;
            tx.send(Input::Signal(Signal::Stop("SIGTERM")))
                .await
                .unwrap();
        })
        .await;
    result.unwrap();
    let world = t.world.borrow();
    let times: Vec<Timestamp> = world
        .out
        .iter()
        .filter(|(n, o, _)| n == "VI_1" && matches!(o, Out::Advert { priority: 200, .. }))
        .map(|(_, _, at)| *at)
        .collect();
    let longest = times.windows(2).map(|w| w[1].0 - w[0].0).max().unwrap();
    // Well above the 100 ms adverts (a busy test machine), well below the check's 800 ms.
    assert!(
        Duration::from_nanos(longest) < Duration::from_millis(600),
        "adverts paused for {:?}",
        Duration::from_nanos(longest)
    );
    let vi2 = |what: fn(&Out) -> bool| {
        let found = world.out.iter().find(|(n, o, _)| n == "VI_2" && what(o));
        found.map(|(_, _, at)| *at).unwrap()
    };
    let opened = vi2(|o| matches!(o, Out::Bind(_)));
    let started = vi2(|o| matches!(o, Out::Notify(..)));
    assert!(
        started > opened + Duration::from_millis(700),
        "VI_2 waited for its check"
    );
}

/// A reload keeps what did not change (no goodbye, VIP kept) and restarts what did.
#[tokio::test]
async fn reload_keeps_unchanged_instances_untouched() {
    let one = instance("VI_1", 51, 200, "");
    let two = instance("VI_2", 52, 200, "");
    let mut t = Test::new(&(one.clone() + &two), links()).await;
    t.rewrite(&(one + &instance("VI_2", 52, 150, "")));
    let world = t.world.clone();
    let result = t
        .run(|tx| async move {
            until(&world, "both master", |w| {
                became_master("VI_1")(w) && became_master("VI_2")(w)
            })
            .await;
            world.borrow_mut().out.clear();
            tx.send(Input::Signal(Signal::Reload)).await.unwrap();
            until(&world, "VI_2 master again", became_master("VI_2")).await;
            tx.send(Input::Signal(Signal::Stop("SIGTERM")))
                .await
                .unwrap();
        })
        .await;
    result.unwrap();
    let vi1 = t.outputs("VI_1");
    let first_goodbye = vi1.iter().position(|o| *o == goodbye());
    assert!(
        first_goodbye.is_some_and(|i| vi1[..i]
            .iter()
            .all(|o| matches!(o, Out::Advert { priority: 200, .. }))),
        "{vi1:?}"
    );
    let vi2 = t.outputs("VI_2");
    assert!(
        said_goodbye(&vi2, std::net::IpAddr::V4(Ipv4Addr::new(198, 51, 100, 52))),
        "the old VI_2 stopped: {vi2:?}"
    );
    assert!(
        vi2.contains(&Out::Notify(State::Master, 150)),
        "the new VI_2 runs: {vi2:?}"
    );
}

/// Interfaces by name: missing at start means FAULT; when it appears the instance binds and
/// joins the election; deleted and created again under another index, it binds again.
#[tokio::test]
async fn interfaces_that_come_and_go() {
    let mut t = Test::new(&instance("VI_1", 51, 200, ""), Links::default()).await;
    let world = t.world.clone();
    let result = t
        .run(|tx| async move {
            let fault = |w: &World| {
                w.out
                    .iter()
                    .any(|(_, o, _)| *o == Out::Notify(State::Fault, 200))
            };
            until(&world, "FAULT without eth0", fault).await;
            let appear = |index| {
                Input::Change(Change::Link {
                    name: "eth0".into(),
                    link: Some(eth0(index)),
                })
            };
            tx.send(appear(7)).await.unwrap();
            until(&world, "bound to 7", |w| {
                w.out.iter().any(|(_, o, _)| *o == Out::Bind(7))
            })
            .await;
            until(&world, "master", became_master("VI_1")).await;
            tx.send(Input::Change(Change::Link {
                name: "eth0".into(),
                link: None,
            }))
            .await
            .unwrap();
            tx.send(appear(9)).await.unwrap();
            until(&world, "bound to 9", |w| {
                w.out.iter().any(|(_, o, _)| *o == Out::Bind(9))
            })
            .await;
            world.borrow_mut().out.clear();
            until(&world, "master again", became_master("VI_1")).await;
            tx.send(Input::Signal(Signal::Stop("SIGTERM")))
                .await
                .unwrap();
        })
        .await;
    result.unwrap();
}

/// A VIP deleted behind the master's back (an address event) is put back at once.
#[tokio::test]
async fn deleted_vip_is_put_back() {
    let mut t = Test::new(&instance("VI_1", 100, 200, ""), links()).await;
    let world = t.world.clone();
    let result = t
        .run(|tx| async move {
            until(&world, "master", became_master("VI_1")).await;
            world.borrow_mut().addrs.remove(&VIP);
            world.borrow_mut().out.clear();
            let deleted = Change::Address {
                index: 7,
                addr: VIP,
                added: false,
            };
            tx.send(Input::Change(deleted)).await.unwrap();
            until(&world, "VIP back", |w| w.addrs.contains(&VIP)).await;
            tx.send(Input::Signal(Signal::Stop("SIGTERM")))
                .await
                .unwrap();
        })
        .await;
    result.unwrap();
    assert_eq!(t.outputs("VI_1").first(), Some(&Out::AddVip(VIP)));
}

/// A change the kernel made just before a reload is in the table the reload reads, and no event
/// will tell it again: the running instances learn it at the commit (a tracked interface that
/// went down there takes its master to FAULT).
#[tokio::test]
async fn reload_tells_running_instances_what_the_new_link_table_shows() {
    let one = instance("VI_1", 51, 200, "track_interface {\neth1\n}");
    let mut all = links();
    all.update("eth1", Some(eth0(8)));
    let mut t = Test::new(&one, all).await;
    t.rewrite(&(one + &instance("VI_2", 52, 100, "")));
    let (world, links) = (t.world.clone(), t.links.clone());
    let result = t
        .run(|tx| async move {
            until(&world, "VI_1 master", became_master("VI_1")).await;
            let down = Link {
                up: false,
                ..eth0(8)
            };
            links.borrow_mut().update("eth1", Some(down));
            tx.send(Input::Signal(Signal::Reload)).await.unwrap();
            let fault = |w: &World| {
                w.out
                    .iter()
                    .any(|(n, o, _)| n == "VI_1" && *o == Out::Notify(State::Fault, 200))
            };
            until(&world, "VI_1 in FAULT", fault).await;
            tx.send(Input::Signal(Signal::Stop("SIGTERM")))
                .await
                .unwrap();
        })
        .await;
    result.unwrap();
}
