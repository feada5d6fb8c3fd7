use std::{
    fs,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    time::Duration,
};

use vrrp_common::{ChecksumForm, Version};

use super::{load, parse_str, Diagnostic, Loaded, Place};
use crate::config::{
    Check, Config, Garp, Liveness, Notify, Probe, ScriptUser, SyncGroup, Tracked, Vip,
    VrrpInstance, XdpMode,
};

fn parse(text: &str) -> Result<Loaded, Vec<Diagnostic>> {
    parse_str(Path::new("keepalived.conf"), text)
}

#[track_caller]
fn ok(text: &str) -> Loaded {
    parse(text).unwrap_or_else(|errors| panic!("refused:\n{}\n---\n{text}", lines(&errors)))
}

#[track_caller]
fn errors(text: &str) -> Vec<String> {
    match parse(text) {
        Ok(loaded) => panic!("accepted: {:?}\n---\n{text}", loaded.config),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

fn lines(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(|d| format!("{d}\n"))
        .collect::<String>()
}

/// A config snippet, and the assertions on what it gives.
type Case<T> = (&'static str, Assert<T>);
type Assert<T> = fn(&T);

const BASE: &str = "interface eth0\nvirtual_router_id 51\nvirtual_ipaddress {\n198.51.100.100\n}";

/// The one instance of a config whose `vrrp_instance VI_1` is BASE plus `extra`.
#[track_caller]
fn instance_in(before: &str, extra: &str) -> VrrpInstance {
    let mut config = ok(&format!(
        "{before}\nvrrp_instance VI_1 {{\n{BASE}\n{extra}\n}}\n"
    ))
    .config;
    assert_eq!(config.instances.len(), 1);
    config.instances.remove(0)
}

fn vip(addr: [u8; 4], prefix_len: u8) -> Vip {
    Vip::new(IpAddr::from(addr), prefix_len)
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

#[test]
fn instance_defaults_are_keepalived_defaults() {
    let i = instance_in("", "");
    assert_eq!(
        i,
        VrrpInstance {
            name: "VI_1".into(),
            iface: "eth0".into(),
            vrid: 51,
            priority: 100,
            vips: vec![vip([198, 51, 100, 100], 32)],
            excluded_vips: vec![],
            version: Version::V2,
            advert_interval: Duration::from_secs(1),
            auth_pass: None,
            preempt: true,
            preempt_delay: Duration::ZERO,
            accept: true,
            checksum: ChecksumForm::WithPseudoHeader,
            garp: Garp::default(),
            track_checks: vec![],
            track_interfaces: vec![],
            track_primary: true,
            skip_check_adv_addr: false,
            src_ip: None,
            unicast_peers: vec![],
            notify: Notify::default(),
            liveness: None,
            max_adopted_interval: Duration::from_secs(10),
        }
    );
}

#[test]
fn instance_keywords_land_in_the_model() {
    let cases: &[Case<VrrpInstance>] = &[
        ("priority 150", |i| assert_eq!(i.priority, 150)),
        ("skip_check_adv_addr", |i| assert!(i.skip_check_adv_addr)),
        ("priority 255", |i| assert_eq!(i.priority, 255)),
        ("state MASTER", |i| assert_eq!(i.priority, 255)),
        ("state MASTER\npriority 101", |i| {
            assert_eq!(i.priority, 101)
        }),
        ("state BACKUP", |i| assert_eq!(i.priority, 100)),
        ("advert_int 3", |i| {
            assert_eq!(i.advert_interval, Duration::from_secs(3))
        }),
        ("version 3\nadvert_int 0.01", |i| {
            assert_eq!((i.version, i.advert_interval), (Version::V3, secs(0.01)))
        }),
        ("version 3\nadvert_int 40.95", |i| {
            assert_eq!(i.advert_interval, secs(40.95))
        }),
        ("version 2", |i| assert_eq!(i.version, Version::V2)),
        ("nopreempt", |i| assert!(!i.preempt)),
        ("preempt", |i| assert!(i.preempt)),
        ("preempt_delay 300", |i| {
            assert_eq!(i.preempt_delay, Duration::from_secs(300))
        }),
        ("preempt_delay 4.12", |i| {
            assert_eq!(i.preempt_delay, secs(4.12))
        }),
        ("accept", |i| assert!(i.accept)),
        ("no_accept", |i| assert!(!i.accept)),
        ("no_accept\naccept", |i| assert!(i.accept)),
        ("nopreempt\npreempt", |i| assert!(i.preempt)),
        (
            "authentication {\nauth_type PASS\nauth_pass s3cr3t\n}",
            |i| assert_eq!(i.auth_pass, Some(*b"s3cr3t\0\0")),
        ),
        (
            "authentication\n{\nauth_type PASS\nauth_pass \"a b\"\n}",
            |i| assert_eq!(i.auth_pass, Some(*b"a b\0\0\0\0\0")),
        ),
        ("virtual_ipaddress_excluded {\n198.51.100.200/24\n}", |i| {
            assert_eq!(i.excluded_vips, vec![vip([198, 51, 100, 200], 24)])
        }),
        ("track_script {\nchk\nchk2 weight -20\n}", |i| {
            assert_eq!(
                i.track_checks,
                vec![
                    Tracked {
                        name: "chk".into(),
                        weight: None
                    },
                    Tracked {
                        name: "chk2".into(),
                        weight: Some(-20)
                    }
                ]
            )
        }),
        ("track_interface {\neth1\neth2 weight 10\n}", |i| {
            assert_eq!(
                i.track_interfaces,
                vec![
                    Tracked {
                        name: "eth1".into(),
                        weight: None
                    },
                    Tracked {
                        name: "eth2".into(),
                        weight: Some(10)
                    }
                ]
            )
        }),
        ("track_interface { eth1 weight 254 }", |i| {
            assert_eq!(i.track_interfaces[0].weight, Some(253))
        }),
        ("dont_track_primary", |i| assert!(!i.track_primary)),
        ("mcast_src_ip 198.51.100.2", |i| {
            assert_eq!(i.src_ip, Some(IpAddr::from([198, 51, 100, 2])))
        }),
        ("unicast_src_ip 198.51.100.2", |i| {
            assert_eq!(i.src_ip, Some(IpAddr::from([198, 51, 100, 2])))
        }),
        (
            "unicast_peer {\n198.51.100.3\n198.51.100.4 min_ttl 250 max_ttl 255\n}",
            |i| {
                assert_eq!(
                    i.unicast_peers,
                    vec![
                        Ipv4Addr::new(198, 51, 100, 3),
                        Ipv4Addr::new(198, 51, 100, 4)
                    ]
                )
            },
        ),
        ("notify \"/etc/keepalived/notify.sh\"", |i| {
            assert_eq!(i.notify.any.as_deref(), Some("/etc/keepalived/notify.sh"))
        }),
        ("notify_master \"/etc/keepalived/notify.sh MASTER\"", |i| {
            assert_eq!(
                i.notify.master.as_deref(),
                Some("/etc/keepalived/notify.sh MASTER")
            )
        }),
        ("notify_backup /usr/local/bin/backup.sh", |i| {
            assert_eq!(i.notify.backup.as_deref(), Some("/usr/local/bin/backup.sh"))
        }),
        ("notify_fault '/bin/logger -t vrrp fault'", |i| {
            assert_eq!(i.notify.fault.as_deref(), Some("/bin/logger -t vrrp fault"))
        }),
        ("notify_stop \"/bin/sh -c 'echo stop > /run/vrrp'\"", |i| {
            assert_eq!(
                i.notify.stop.as_deref(),
                Some("/bin/sh -c 'echo stop > /run/vrrp'")
            )
        }),
        ("garp_master_delay 10", |i| {
            assert_eq!(i.garp.repeat_after, Some(Duration::from_secs(10)))
        }),
        ("garp_master_delay 0", |i| {
            assert_eq!(i.garp.repeat_after, None)
        }),
        ("garp_master_repeat 1", |i| assert_eq!(i.garp.count, 1)),
        ("garp_master_repeat 0", |i| assert_eq!(i.garp.count, 1)),
        ("garp_master_refresh 60", |i| {
            assert_eq!(i.garp.refresh, Some(Duration::from_secs(60)))
        }),
        ("garp_lower_prio_repeat 2", |i| {
            assert_eq!(i.garp.lower_prio_count, 2)
        }),
        ("garp_lower_prio_repeat 0", |i| {
            assert_eq!(i.garp.lower_prio_count, 0)
        }),
        ("garp_lower_prio_delay 0", |i| {
            assert_eq!(i.garp.lower_prio_repeat_after, None)
        }),
        ("v3_checksum_as_v2", |i| {
            assert_eq!(i.checksum, ChecksumForm::MessageOnly)
        }),
        ("v3_checksum_as_v2 off", |i| {
            assert_eq!(i.checksum, ChecksumForm::WithPseudoHeader)
        }),
        ("strict_mode off", |i| assert!(i.accept)),
        ("check_unicast_src", |_| {}),
        ("mcast_dst_ip 224.0.0.18", |_| {}),
        ("debug 2", |_| {}),
        ("use_vmac\nvmac_xmit_base", |_| {}),
    ];
    let scripts = "vrrp_script chk { script /bin/true }\nvrrp_script chk2 { script /bin/true }";
    for (extra, check) in cases {
        check(&instance_in(scripts, extra));
    }
}

#[test]
fn vip_entries_with_keepalived_options() {
    let i = instance_in(
        "",
        "virtual_ipaddress_excluded {\n\
         203.0.113.10/24 dev eth1 label eth1:1 scope link brd 203.0.113.255\n\
         203.0.113.11/24 dev eth1 brd -\n\
         203.0.113.12/24 dev eth1 brd + scope host\n\
         203.0.113.13/24 broadcast 203.0.113.255 scope 200\n\
         203.0.113.14 scope nowhere -nodad no_track\n\
         }",
    );
    let v = &i.excluded_vips;
    assert_eq!(
        v[0],
        Vip {
            addr: std::net::IpAddr::V4(Ipv4Addr::new(203, 0, 113, 10)),
            prefix_len: 24,
            label: Some("eth1:1".into()),
            dev: Some("eth1".into()),
            scope: 253,
            broadcast: Some(Ipv4Addr::new(203, 0, 113, 255)),
            no_track: false,
        }
    );
    assert_eq!(v[1].broadcast, Some(Ipv4Addr::new(203, 0, 113, 0)));
    assert_eq!((v[2].broadcast, v[2].scope), (None, 254));
    assert_eq!((v[3].broadcast, v[3].scope), (v[0].broadcast, 200));
    assert_eq!(
        (v[4].prefix_len, v[4].scope, v[4].no_track),
        (32, 255, true)
    );
}

#[test]
fn vips_on_one_line_and_brace_on_next_line() {
    let config = ok("vrrp_instance VI_1\n{\ninterface eth0\nvirtual_router_id 1\n\
                     virtual_ipaddress { 198.51.100.1/24 }\nvirtual_ipaddress\n{\n198.51.100.2\n}\n}\n")
    .config;
    let vips: Vec<IpAddr> = config.instances[0].vips.iter().map(|v| v.addr).collect();
    assert_eq!(
        vips,
        [
            Ipv4Addr::new(198, 51, 100, 1),
            Ipv4Addr::new(198, 51, 100, 2)
        ]
    );
}

#[test]
fn global_defs_keywords_land_in_the_model() {
    let cases: &[Case<Config>] = &[
        ("router_id LVS_DEVEL", |c| {
            assert_eq!(c.global.router_id.as_deref(), Some("LVS_DEVEL"))
        }),
        ("vrrp_version 3", |c| {
            assert_eq!(c.instances[0].version, Version::V3)
        }),
        ("vrrp_garp_interval 0.001", |c| {
            assert_eq!(c.instances[0].garp.interval, Duration::from_millis(1))
        }),
        ("vrrp_gna_interval 0.002", |c| {
            assert_eq!(c.instances[0].garp.na_interval, Duration::from_millis(2))
        }),
        ("vrrp_mcast_group6 ff02::12", |_| {}),
        ("vrrp_skip_check_adv_addr", |c| {
            assert!(c.global.skip_check_adv_addr && c.instances[0].skip_check_adv_addr)
        }),
        ("vrrp_rt_priority 0", |c| {
            assert_eq!(c.global.rt_priority, 0)
        }),
        ("dynamic_interfaces", |_| {}),
        ("script_user keepalived_script", |c| {
            assert_eq!(
                c.global.script_user,
                Some(ScriptUser {
                    user: "keepalived_script".into(),
                    group: None
                })
            )
        }),
        ("script_user nobody nogroup", |c| {
            assert_eq!(
                c.global.script_user,
                Some(ScriptUser {
                    user: "nobody".into(),
                    group: Some("nogroup".into())
                })
            )
        }),
        ("enable_script_security", |c| {
            assert!(c.global.script_security)
        }),
        ("vrrp_rt_priority 50", |c| {
            assert_eq!(c.global.rt_priority, 50)
        }),
        ("vrrp_startup_delay 5.5", |c| {
            assert_eq!(c.global.startup_delay, secs(5.5))
        }),
        ("vrrp_garp_master_delay 10", |c| {
            assert_eq!(
                c.instances[0].garp.repeat_after,
                Some(Duration::from_secs(10))
            )
        }),
        ("vrrp_garp_master_repeat 2", |c| {
            assert_eq!(c.instances[0].garp.count, 2)
        }),
        ("vrrp_garp_master_refresh 60", |c| {
            assert_eq!(c.instances[0].garp.refresh, Some(Duration::from_secs(60)))
        }),
        ("vrrp_min_garp", |c| {
            assert_eq!(
                (c.instances[0].garp.count, c.instances[0].garp.repeat_after),
                (1, None)
            )
        }),
        (
            "vrrp_garp_lower_prio_repeat 3\nvrrp_garp_lower_prio_delay 7",
            |c| {
                let g = &c.instances[0].garp;
                assert_eq!(
                    (g.lower_prio_count, g.lower_prio_repeat_after),
                    (3, Some(Duration::from_secs(7)))
                )
            },
        ),
        ("v3_checksum_as_v2", |c| {
            assert_eq!(c.instances[0].checksum, ChecksumForm::MessageOnly)
        }),
        ("vrrp_check_unicast_src", |_| {}),
        ("vrrp_mcast_group4 224.0.0.18", |_| {}),
        ("vrrp_mcast_group6 ff02::12", |_| {}),
    ];
    for (line, check) in cases {
        let text = format!("global_defs {{\n{line}\n}}\nvrrp_instance VI_1 {{\n{BASE}\n}}\n");
        check(&ok(&text).config);
    }
}

#[test]
fn instance_settings_override_global_ones() {
    let i = instance_in(
        "global_defs {\nvrrp_version 3\nvrrp_garp_master_repeat 2\nvrrp_garp_master_delay 1\n\
         v3_checksum_as_v2\n}",
        "version 2\ngarp_master_repeat 3\ngarp_master_delay 0\nv3_checksum_as_v2 off",
    );
    assert_eq!(i.version, Version::V2);
    assert_eq!((i.garp.count, i.garp.repeat_after), (3, None));
    assert_eq!(i.checksum, ChecksumForm::WithPseudoHeader);
}

/// keepalived (vrrp.c): garp_lower_prio_* default to the global vrrp_garp_master_* values,
/// not to the instance's own garp_master_*.
#[test]
fn lower_priority_garp_defaults_follow_the_global_master_ones() {
    let defaults = instance_in("", "");
    assert_eq!(
        (
            defaults.garp.lower_prio_count,
            defaults.garp.lower_prio_repeat_after
        ),
        (5, Some(Duration::from_secs(5)))
    );
    let i = instance_in(
        "global_defs {\nvrrp_garp_master_repeat 2\nvrrp_garp_master_delay 1\n}",
        "garp_master_repeat 3\ngarp_master_delay 9",
    );
    assert_eq!(
        (i.garp.lower_prio_count, i.garp.lower_prio_repeat_after),
        (2, Some(Duration::from_secs(1)))
    );
}

/// The scripts of a config with `vrrp_script chk { BODY }`, tracked by VI_1.
#[track_caller]
fn script(body: &str) -> Check {
    let text = format!(
        "vrrp_script chk {{\n{body}\n}}\nvrrp_instance VI_1 {{\n{BASE}\ntrack_script {{\nchk\n}}\n}}\n"
    );
    ok(&text).config.checks.remove(0)
}

#[test]
fn vrrp_script_defaults_and_keywords() {
    assert_eq!(
        script("script \"killall -0 nginx\""),
        Check {
            name: "chk".into(),
            probe: Probe::Exec("killall -0 nginx".into()),
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            weight: 0,
            reverse: false,
            rise: 1,
            fall: 1,
            user: None,
            init_fail: false,
        }
    );
    let cases: &[Case<Check>] = &[
        ("interval 2", |s| {
            assert_eq!((s.interval, s.timeout), (secs(2.0), secs(2.0)))
        }),
        ("interval 2\ntimeout 0.5", |s| {
            assert_eq!((s.interval, s.timeout), (secs(2.0), secs(0.5)))
        }),
        ("interval 0", |s| assert_eq!(s.interval, secs(1.0))),
        ("weight -20", |s| {
            assert_eq!((s.weight, s.reverse), (-20, false))
        }),
        ("weight 10 reverse", |s| {
            assert_eq!((s.weight, s.reverse), (10, true))
        }),
        ("rise 3\nfall 2", |s| assert_eq!((s.rise, s.fall), (3, 2))),
        ("user nobody", |s| {
            assert_eq!(
                s.user,
                Some(ScriptUser {
                    user: "nobody".into(),
                    group: None
                })
            )
        }),
        ("user nobody :nogroup", |s| {
            assert_eq!(s.user.as_ref().unwrap().group.as_deref(), Some("nogroup"))
        }),
        ("init_fail", |s| assert!(s.init_fail)),
    ];
    for (extra, check) in cases {
        check(&script(&format!("script \"pidof nginx\"\n{extra}")));
    }
    assert_eq!(
        script("script /usr/local/bin/check_nginx.sh").probe,
        Probe::Exec("/usr/local/bin/check_nginx.sh".into())
    );
}

#[test]
fn agent_extension_block() {
    let text = "vrrp_agent {\n  xdp skb\n  checksum message\n\
                check nginx { process nginx\n interval 2\n weight -30\n fall 2\n rise 3 }\n\
                check port { tcp 127.0.0.1:80\n timeout 0.5 }\n\
                check health { http http://127.0.0.1:8080/healthz status 204 host www.example.com }\n\
                check root { http http://[::1] }\n}\n\
                vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 51\n\
                virtual_ipaddress { 198.51.100.100 }\n  track_script {\n nginx\n port\n health\n root\n }\n}\n";
    let config = ok(text).config;
    assert_eq!(config.global.xdp, XdpMode::Skb);
    assert_eq!(config.instances[0].checksum, ChecksumForm::MessageOnly);
    let s = &config.checks;
    assert_eq!(s[0].probe, Probe::Process("nginx".into()));
    assert_eq!(
        (
            s[0].interval,
            s[0].timeout,
            s[0].weight,
            s[0].fall,
            s[0].rise
        ),
        (secs(2.0), secs(2.0), -30, 2, 3)
    );
    assert_eq!(
        s[1].probe,
        Probe::Tcp("127.0.0.1:80".parse::<SocketAddr>().unwrap())
    );
    assert_eq!((s[1].interval, s[1].timeout), (secs(1.0), secs(0.5)));
    assert_eq!(
        s[2].probe,
        Probe::Http {
            addr: "127.0.0.1:8080".parse().unwrap(),
            host: Some("www.example.com".into()),
            path: "/healthz".into(),
            status: 204,
        }
    );
    assert_eq!(
        s[3].probe,
        Probe::Http {
            addr: "[::1]:80".parse().unwrap(),
            host: None,
            path: "/".into(),
            status: 200,
        }
    );
    for (xdp, mode) in [
        ("auto", XdpMode::Auto),
        ("native", XdpMode::Native),
        ("tc", XdpMode::Tc),
        ("off", XdpMode::Off),
    ] {
        let text = format!("vrrp_agent {{ xdp {xdp} }}\nvrrp_instance VI_1 {{\n{BASE}\n}}\n");
        assert_eq!(ok(&text).config.global.xdp, mode);
    }
}

/// The liveness channel: vrrp_agent sets every instance's default, an instance its own;
/// a multiplier alone leaves it off with a warning.
#[test]
fn liveness_channel_from_vrrp_agent_or_the_instance() {
    let fast = "version 3\nadvert_int 0.01";
    let both = |interval: u64, multiplier: u8| {
        Some(Liveness {
            interval: Duration::from_micros(interval),
            multiplier,
        })
    };
    let agent = "vrrp_agent {\nliveness_interval 200us\n}";
    assert_eq!(instance_in(agent, fast).liveness, both(200, 3));
    // The channel runs over IPv4 only: vrrp_agent's setting leaves an IPv6 instance out.
    let v6 = "version 3\nadvert_int 0.01\ninterface eth0\nvirtual_router_id 52\n\
              virtual_ipaddress {\n2001:db8::100/64\n}";
    let loaded = ok(&format!(
        "{agent}\nvrrp_instance VI_1 {{\n{BASE}\n{fast}\n}}\nvrrp_instance VI_6 {{\n{v6}\n}}\n"
    ));
    assert_eq!(loaded.config.instances[0].liveness, both(200, 3));
    assert_eq!(loaded.config.instances[1].liveness, None);
    assert!(
        loaded.warnings[0]
            .message
            .contains("leaves out vrrp_instance VI_6"),
        "{:?}",
        loaded.warnings
    );
    let own = errors(&format!(
        "vrrp_instance VI_6 {{\n{v6}\nliveness_interval 200us\n}}\n"
    ));
    assert!(own[0].contains("IPv4 only"), "{own:?}");
    let agent = "vrrp_agent {\nliveness_interval 1ms\nliveness_multiplier 6\n}";
    assert_eq!(instance_in(agent, fast).liveness, both(1000, 6));
    let own = format!("{fast}\nliveness_interval 300us\nliveness_multiplier 5");
    assert_eq!(instance_in(agent, &own).liveness, both(300, 5));
    assert_eq!(instance_in("", fast).liveness, None);
    let loaded = ok(&format!(
        "vrrp_instance VI_1 {{\n{BASE}\nliveness_multiplier 5\n}}\n"
    ));
    assert_eq!(loaded.config.instances[0].liveness, None);
    assert!(loaded.warnings[0]
        .message
        .contains("without liveness_interval"));
}

/// metrics_listen in vrrp_agent: off unless given, an address and port when given.
#[test]
fn metrics_listen_from_vrrp_agent() {
    let instance = format!("vrrp_instance VI_1 {{\n{BASE}\n}}\n");
    assert_eq!(ok(&instance).config.global.metrics_listen, None);
    let on = ok(&format!(
        "vrrp_agent {{\nmetrics_listen 127.0.0.1:9650\n}}\n{instance}"
    ));
    assert_eq!(
        on.config.global.metrics_listen,
        Some("127.0.0.1:9650".parse().unwrap())
    );
    let got = errors(&format!(
        "vrrp_agent {{\nmetrics_listen 9650\n}}\n{instance}"
    ));
    assert!(got.iter().any(|e| e.contains("write ADDR:PORT")), "{got:?}");
}

/// max_adopted_interval: ten times the instance's own interval unless vrrp_agent sets it; never
/// below the instance's own.
#[test]
fn max_adopted_interval_from_vrrp_agent() {
    let fast = "version 3\nadvert_int 0.05";
    assert_eq!(
        instance_in("", fast).max_adopted_interval,
        Duration::from_millis(500)
    );
    let agent = "vrrp_agent {\nmax_adopted_interval 2s\n}";
    assert_eq!(
        instance_in(agent, fast).max_adopted_interval,
        Duration::from_secs(2)
    );
    let agent = "vrrp_agent {\nmax_adopted_interval 20ms\n}";
    let got = errors(&format!(
        "{agent}\nvrrp_instance VI_1 {{\n{BASE}\n{fast}\n}}\n"
    ));
    assert!(
        got.iter()
            .any(|e| e.contains("max_adopted_interval 20ms is below")),
        "{got:?}"
    );
}

#[test]
fn liveness_errors_point_at_the_line() {
    let cases = [
        (
            "liveness_interval 50us",
            "keepalived.conf:9: vrrp_instance VI_1: liveness interval 50µs: write 100us to 1s",
        ),
        (
            "liveness_interval 1ms\nliveness_multiplier 1",
            "keepalived.conf:10: vrrp_instance VI_1: liveness multiplier 1",
        ),
        ("liveness_interval 1s", "not faster than VRRP's own"),
        (
            "liveness_interval soon",
            "liveness_interval soon: soon: write a duration",
        ),
    ];
    for (extra, want) in cases {
        let text =
            format!("vrrp_instance VI_1 {{\n{BASE}\nversion 3\nadvert_int 0.01\n{extra}\n}}\n");
        let got = errors(&text);
        assert!(
            got.iter().any(|e| e.contains(want)),
            "want {want:?} in {got:?}"
        );
    }
}

#[test]
fn sync_group_members_notify_and_tracking() {
    let text = "vrrp_script chk { script \"pidof nginx\" }\n\
                vrrp_sync_group G1 {\n  group {\n    VI_1\n    VI_2\n  }\n\
                notify_master \"/etc/keepalived/master.sh\"\n  notify \"/etc/keepalived/notify.sh\"\n\
                track_script { chk }\n  track_interface { eth2 }\n}\n\
                vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 51\n\
                virtual_ipaddress { 198.51.100.100 }\n}\n\
                vrrp_instance VI_2 {\n  interface eth1\n  virtual_router_id 51\n\
                virtual_ipaddress { 203.0.113.100 }\n  track_script { chk }\n}\n";
    let config = ok(text).config;
    assert_eq!(
        config.sync_groups,
        vec![SyncGroup {
            name: "G1".into(),
            members: vec!["VI_1".into(), "VI_2".into()],
            notify: Notify {
                any: Some("/etc/keepalived/notify.sh".into()),
                master: Some("/etc/keepalived/master.sh".into()),
                ..Notify::default()
            },
        }]
    );
    // The group's trackers apply to every member, once.
    for i in &config.instances {
        assert_eq!(i.track_checks.len(), 1, "{}", i.name);
        assert_eq!(i.track_interfaces[0].name, "eth2");
    }
    let one_line = "vrrp_sync_group G { group { VI_1 } }\nvrrp_instance VI_1 {\n";
    assert_eq!(
        ok(&format!("{one_line}{BASE}\n}}\n")).config.sync_groups[0].members,
        ["VI_1"]
    );
}

#[test]
fn weighted_trackers_follow_keepalived_in_sync_groups_and_owners() {
    let scripts = "vrrp_script w { script \"pidof nginx\"\nweight -20 }\n\
                   vrrp_script u { script \"pidof haproxy\" }\n";
    let member = |prio: u8| {
        format!(
            "vrrp_instance VI_1 {{\n{BASE}\npriority {prio}\ntrack_script {{\nw\nu\nu2 weight 5\n}}\n\
             track_interface {{\neth1 weight 10\neth2\n}}\n}}\n"
        )
    };
    let u2 = "vrrp_script u2 { script \"pidof php-fpm\" }\n";
    // In a sync group: weighted scripts dropped, weighted interfaces made unweighted.
    let loaded = ok(&format!(
        "{scripts}{u2}vrrp_sync_group G {{ group {{ VI_1 }} }}\n{}",
        member(100)
    ));
    let i = &loaded.config.instances[0];
    let names: Vec<&str> = i.track_checks.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["u"]);
    assert_eq!(i.track_interfaces[0].weight, Some(0));
    // And: a group of one instance.
    assert_eq!(loaded.warnings.len(), 4, "{}", lines(&loaded.warnings));
    // With sync_group_tracking_weight they stay.
    let i = &ok(&format!(
        "{scripts}{u2}vrrp_sync_group G {{ group {{ VI_1 }}\nsync_group_tracking_weight }}\n{}",
        member(100)
    ))
    .config
    .instances[0];
    assert_eq!(
        (i.track_checks.len(), i.track_interfaces[0].weight),
        (3, Some(10))
    );
    // A member is the address owner: the group's weighted tracker is made unweighted, once.
    let loaded = ok(&format!(
        "{scripts}vrrp_sync_group G {{ group {{ VI_1 VI_2 }}\ntrack_script {{ w }} }}\n\
         vrrp_instance VI_1 {{\n{BASE}\npriority 255\n}}\n\
         vrrp_instance VI_2 {{\ninterface eth1\nvirtual_router_id 52\n\
         virtual_ipaddress {{ 203.0.113.1 }}\n}}\n"
    ));
    assert_eq!(loaded.warnings.len(), 1, "{}", lines(&loaded.warnings));
    for i in &loaded.config.instances {
        let unweighted = Tracked {
            name: "w".into(),
            weight: Some(0),
        };
        assert_eq!(i.track_checks, [unweighted]);
    }
    // The address owner: weighted scripts and interfaces dropped.
    let i = &ok(&format!("{scripts}{u2}{}", member(255)))
        .config
        .instances[0];
    let names: Vec<&str> = i.track_interfaces.iter().map(|t| t.name.as_str()).collect();
    assert_eq!((i.track_checks.len(), names), (1, vec!["eth2"]));
}

#[test]
fn keepalived_fixups_warn_and_adjust() {
    let cases: &[(&str, &str, Assert<VrrpInstance>)] = &[
        (
            "state MASTER\npriority 150\nnopreempt",
            "state MASTER",
            |i| assert!(i.preempt),
        ),
        ("priority 255\nnopreempt", "priority 255", |i| {
            assert!(i.preempt)
        }),
        (
            "nopreempt\npreempt_delay 10",
            "preempt_delay is dropped",
            |i| assert_eq!((i.preempt, i.preempt_delay), (false, Duration::ZERO)),
        ),
        (
            "state MASTER\npriority 150\npreempt_delay 10",
            "preempt_delay is dropped",
            |i| assert_eq!(i.preempt_delay, Duration::ZERO),
        ),
        (
            "version 3\nauthentication {\nauth_type PASS\nauth_pass x\n}",
            "version 3",
            |i| assert_eq!(i.auth_pass, None),
        ),
        (
            "authentication {\nauth_type PASS\n}",
            "without auth_pass",
            |i| assert_eq!(i.auth_pass, None),
        ),
        (
            "authentication {\nauth_pass x\n}",
            "without auth_type",
            |i| assert_eq!(i.auth_pass, None),
        ),
        (
            "authentication {\nauth_type PASS\nauth_pass 0123456789\n}",
            "first 8",
            |i| assert_eq!(i.auth_pass, Some(*b"01234567")),
        ),
        ("garp_master_repeat 0", "means 1", |i| {
            assert_eq!(i.garp.count, 1)
        }),
        ("debug 1", "RUST_LOG", |_| {}),
        ("use_vmac", "VMAC is not supported", |_| {}),
        ("v3_checksum_as_v2", "before 2.2.8", |i| {
            assert_eq!(i.checksum, ChecksumForm::MessageOnly)
        }),
    ];
    for (extra, warning, check) in cases {
        let text = format!("vrrp_instance VI_1 {{\n{BASE}\n{extra}\n}}\n");
        let loaded = ok(&text);
        check(&loaded.config.instances[0]);
        assert_eq!(loaded.warnings.len(), 1, "{extra}: {:?}", loaded.warnings);
        assert!(
            loaded.warnings[0].message.contains(warning),
            "{extra}: {}",
            loaded.warnings[0]
        );
    }
}

/// `text` loads, with a warning that contains `warning`.
#[track_caller]
fn warns(text: &str, warning: &str) -> Loaded {
    let loaded = ok(text);
    assert!(
        loaded
            .warnings
            .iter()
            .any(|w| w.to_string().contains(warning)),
        "want {warning:?} in:\n{}---\n{text}",
        lines(&loaded.warnings)
    );
    loaded
}

fn ip(addr: [u8; 4]) -> Ipv4Addr {
    Ipv4Addr::from(addr)
}

/// What keepalived 2.2.7 logs and runs anyway runs here too, with keepalived's resulting value
/// and a warning that says so.
#[test]
fn keepalived_tolerance_warns_with_keepalived_result() {
    let cases: &[(&str, &str, Assert<VrrpInstance>)] = &[
        (
            "state SLAVE",
            "keepalived.conf:7: unknown state 'SLAVE', defaulting to BACKUP",
            |i| assert_eq!(i.priority, 100),
        ),
        ("state master", "unknown state 'master'", |i| {
            assert_eq!(i.priority, 100)
        }),
        (
            "state MASTER\nstate BACKUP",
            "previously set as MASTER - ignoring BACKUP",
            |i| assert_eq!(i.priority, 255),
        ),
        (
            "priority 300",
            "priority 300: write a whole number from 1 to 255; priority 100 is used",
            |i| assert_eq!(i.priority, 100),
        ),
        ("state MASTER\npriority 150x", "priority 150x", |i| {
            assert_eq!(i.priority, 100)
        }),
        (
            "priority 100\npriority 101",
            "keepalived.conf:8: priority is already given at keepalived.conf:7: this one counts",
            |i| assert_eq!(i.priority, 101),
        ),
        ("priority 101 200", "priority: \"200\" is ignored", |i| {
            assert_eq!(i.priority, 101)
        }),
        (
            "advert_int 0.5",
            "advert_int 0.5: VRRPv2 sends whole seconds, 1 to 255; keepalived makes it 1",
            |i| assert_eq!(i.advert_interval, secs(1.0)),
        ),
        ("advert_int 2.5", "makes it 3", |i| {
            assert_eq!(i.advert_interval, secs(3.0))
        }),
        (
            "version 3\nadvert_int 0.015",
            "keepalived.conf:8: advert_int 0.015: VRRPv3 sends",
            |i| assert_eq!(i.advert_interval, secs(0.02)),
        ),
        ("version 3\nadvert_int 41", "makes it 40.95", |i| {
            assert_eq!(i.advert_interval, secs(40.95))
        }),
        (
            "version 3\nadvert_int 0.1234567",
            "more than 6 decimals",
            |i| assert_eq!(i.advert_interval, secs(0.12)),
        ),
        (
            "advert_int fast",
            "advert_int fast: write seconds, like 1 or 0.5; the line is ignored",
            |i| assert_eq!(i.advert_interval, secs(1.0)),
        ),
        (
            "advert_int 0",
            "keepalived takes 0.01 to 255 seconds",
            |i| assert_eq!(i.advert_interval, secs(1.0)),
        ),
        ("advert_int 300", "advert_int 300", |i| {
            assert_eq!(i.advert_interval, secs(1.0))
        }),
        (
            "version 4",
            "version 4: the VRRP version is 2 or 3; the line is ignored",
            |i| assert_eq!(i.version, Version::V2),
        ),
        (
            "version 3\nversion 2",
            "this one is ignored, as keepalived does",
            |i| assert_eq!(i.version, Version::V3),
        ),
        (
            "authentication x {\nauth_type SECRET\nauth_pass pw\n}",
            "unknown authentication type",
            |i| assert_eq!(i.auth_pass, None),
        ),
        (
            "authentication x {\nauth_type PASS\nauth_pass pw\n}",
            "authentication: \"x\" is ignored",
            |i| assert_eq!(i.auth_pass, Some(*b"pw\0\0\0\0\0\0")),
        ),
        (
            "preempt_delay 1001",
            "keepalived takes 0 to 1000 seconds; preempt_delay 0 is used",
            |i| assert_eq!(i.preempt_delay, Duration::ZERO),
        ),
        (
            "preempt_delay 10\npreempt_delay soon",
            "preempt_delay 0 is used",
            |i| assert_eq!(i.preempt_delay, Duration::ZERO),
        ),
        ("nopreempt yes", "nopreempt: \"yes\" is ignored", |i| {
            assert!(!i.preempt)
        }),
        ("garp_master_repeat 300", "at most 255", |i| {
            assert_eq!(i.garp.count, 255)
        }),
        (
            "garp_master_delay 2s",
            "keepalived reads 2, and so does this agent",
            |i| assert_eq!(i.garp.repeat_after, Some(secs(2.0))),
        ),
        (
            "garp_master_refresh x",
            "garp_master_refresh x: write a whole number",
            |i| assert_eq!(i.garp.refresh, None),
        ),
        (
            "virtual_ipaddress {\n203.0.113.300\n203.0.113.1\n}",
            "VIP 203.0.113.300: not an IPv4 or IPv6 address; the VIP is skipped",
            |i| assert_eq!(i.vips.len(), 2),
        ),
        (
            "virtual_ipaddress {\n203.0.113.1/24 lable eth0:1\n}",
            "unknown option \"lable\" (did you mean \"label\"?) is ignored",
            |i| assert_eq!(i.vips[1], vip([203, 0, 113, 1], 24)),
        ),
        (
            "virtual_ipaddress {\n203.0.113.1 scope galaxy\n}",
            "scope galaxy: write global",
            |i| assert_eq!(i.vips[1].scope, 0),
        ),
        (
            "virtual_ipaddress {\n203.0.113.1/24 brd x\n}",
            "brd x: not an IPv4 address; the VIP is skipped",
            |i| assert_eq!(i.vips.len(), 1),
        ),
        (
            "virtual_ipaddress {\n203.0.113.1/24 dev\n}",
            "dev needs a value; the VIP is skipped",
            |i| assert_eq!(i.vips.len(), 1),
        ),
        (
            "virtual_ipaddress {\n203.0.113.1/32 brd -\n}",
            "a /32 has no broadcast address",
            |i| assert_eq!(i.vips[1].broadcast, None),
        ),
        (
            "virtual_ipaddress {\n203.0.113.1/33\n}",
            "takes a length past 32 as /32",
            |i| assert_eq!(i.vips[1].prefix_len, 32),
        ),
        (
            "virtual_ipaddress_excluded {\n198.51.100.100/24\n}",
            "VIP 198.51.100.100 is already listed at keepalived.conf:5",
            |i| assert_eq!((i.vips.len(), i.excluded_vips.len()), (1, 0)),
        ),
        (
            "track_interface {\neth1 wieght 10\n}",
            "unknown option \"wieght\"; the entry is ignored",
            |i| assert!(i.track_interfaces.is_empty()),
        ),
        (
            "track_interface {\neth1 weight\n}",
            "weight needs a value",
            |i| assert!(i.track_interfaces.is_empty()),
        ),
        (
            "track_interface {\neth1 weight 300\n}",
            "weight 0 is used",
            |i| assert_eq!(i.track_interfaces[0].weight, Some(0)),
        ),
        (
            "track_interface {\neth1\neth1 weight 5\n}",
            "eth1 is already tracked at keepalived.conf:8",
            |i| assert_eq!(i.track_interfaces.len(), 1),
        ),
        (
            "track_script {\nchk weight 300\n}",
            "the vrrp_script's own weight is used",
            |i| assert_eq!(i.track_checks[0].weight, None),
        ),
        (
            "track_script {\nchk weight 10 backwards\n}",
            "unknown weight option \"backwards\"",
            |i| assert_eq!(i.track_checks[0].weight, Some(10)),
        ),
        (
            "mcast_src_ip 198.51.100.300",
            "skipped: adverts go from the interface's address",
            |i| assert_eq!(i.src_ip, None),
        ),
        (
            "mcast_src_ip 198.51.100.2\nunicast_src_ip 198.51.100.3",
            "the advert source is already 198.51.100.2",
            |i| assert_eq!(i.src_ip, Some(IpAddr::from([198, 51, 100, 3]))),
        ),
        (
            "unicast_peer {\n198.51.100.3\nbogus\n198.51.100.3\n198.51.100.4 ttl 5\n}",
            "unicast_peer bogus: not an IPv4 or IPv6 address; skipped",
            |i| {
                assert_eq!(
                    i.unicast_peers,
                    [ip([198, 51, 100, 3]), ip([198, 51, 100, 4])]
                )
            },
        ),
        (
            "unicast_peer {\n198.51.100.3\n198.51.100.3\n}",
            "unicast peer 198.51.100.3 is already listed",
            |i| assert_eq!(i.unicast_peers.len(), 1),
        ),
        (
            "unicast_peer {\n198.51.100.4 ttl 5\n}",
            "unknown option \"ttl 5\", ignored",
            |i| assert_eq!(i.unicast_peers.len(), 1),
        ),
        (
            "mcast_dst_ip 198.51.100.1",
            "not a multicast address; skipped: adverts go to 224.0.0.18 (ff02::12)",
            |_| {},
        ),
        (
            "notify_master /a.sh\nnotify_master /b.sh",
            "this one is ignored",
            |i| assert_eq!(i.notify.master.as_deref(), Some("/a.sh")),
        ),
    ];
    let scripts = "vrrp_script chk { script /bin/true }";
    for (extra, warning, check) in cases {
        let text = format!("{scripts}\nvrrp_instance VI_1 {{\n{BASE}\n{extra}\n}}\n");
        let text = text.replacen('\n', " ", 1);
        check(&warns(&text, warning).config.instances[0]);
    }
}

#[test]
fn keepalived_tolerance_in_scripts_and_global_defs() {
    let cases: &[(&str, &str, Assert<Check>)] = &[
        (
            "interval 2s",
            "interval 2s: not a number; keepalived reads 2",
            |c| assert_eq!(c.interval, secs(2.0)),
        ),
        ("weight 300", "this agent uses 253", |c| {
            assert_eq!(c.weight, 253)
        }),
        ("weight -20 foo", "unknown weight option", |c| {
            assert_eq!((c.weight, c.reverse), (-20, false))
        }),
        (
            "rise 0",
            "rise 0: write a whole number from 1 to 2147483647; 1 is used",
            |c| assert_eq!(c.rise, 1),
        ),
        ("fall x", "1 is used", |c| assert_eq!(c.fall, 1)),
        ("rise 3\nrise 4", "this one counts", |c| {
            assert_eq!(c.rise, 4)
        }),
    ];
    for (extra, warning, check) in cases {
        let text = format!("vrrp_script chk {{\nscript /bin/true\n{extra}\n}}\nvrrp_instance VI_1 {{\n{BASE}\n}}\n");
        check(&warns(&text, warning).config.checks[0]);
    }
    let cases: &[(&str, &str, Assert<Config>)] = &[
        (
            "vrrp_version 4",
            "the line is ignored (instances without version speak VRRPv2)",
            |c| assert_eq!(c.instances[0].version, Version::V2),
        ),
        ("vrrp_rt_priority 100", "99 is used", |c| {
            assert_eq!(c.global.rt_priority, 99)
        }),
        ("vrrp_garp_master_repeat 300", "at most 255", |c| {
            assert_eq!(c.instances[0].garp.count, 255)
        }),
        (
            "vrrp_garp_interval x",
            "vrrp_garp_interval x: write seconds",
            |c| assert_eq!(c.instances[0].garp.interval, Duration::ZERO),
        ),
        (
            "vrrp_skip_check_adv_addr off",
            "keepalived 2.2.7 ignores \"off\" and turns vrrp_skip_check_adv_addr on",
            |c| assert!(c.global.skip_check_adv_addr),
        ),
        ("enable_script_security no", "ignores \"no\"", |c| {
            assert!(c.global.script_security)
        }),
        (
            "vrrp_mcast_group4 garbage",
            "skipped: adverts go to 224.0.0.18",
            |_| {},
        ),
        ("vrrp_min_garp maybe", "the line is ignored", |c| {
            assert_eq!(c.instances[0].garp.count, 5)
        }),
        ("router_id a b", "router_id: \"b\" is ignored", |c| {
            assert_eq!(c.global.router_id.as_deref(), Some("a"))
        }),
    ];
    for (line, warning, check) in cases {
        let text = format!("global_defs x {{\n{line}\n}}\nvrrp_instance VI_1 {{\n{BASE}\n}}\n");
        check(&warns(&text, warning).config);
    }
    let text = format!(
        "vrrp_sync_group G {{\ngroup {{ VI_1 VI_2 }}\nsync_group_tracking_weight false\n}}\n\
         vrrp_instance VI_1 {{\n{BASE}\n}}\n"
    );
    let loaded = warns(
        &text,
        "ignores \"false\" and turns sync_group_tracking_weight on",
    );
    assert_eq!(loaded.config.sync_groups[0].members, ["VI_1"]);
}

#[test]
fn keepalived_tolerance_across_blocks() {
    let vi = instance_text;
    let chk = |cmd: &str| format!("vrrp_script chk {{\nscript {cmd}\n}}\n");
    // Braces: a missing one ends with the file, an extra one is dropped.
    warns(
        &format!("vrrp_instance VI_1 {{\n{BASE}\n"),
        "keepalived.conf:1: the vrrp_instance block opened here is never closed: it ends with \
         the file",
    );
    warns(
        &format!("{}}}\n", vi("VI_1", 1)),
        "keepalived.conf:6: '}' closes no block: ignored",
    );
    // Names defined twice: keepalived keeps the first.
    let loaded = warns(
        &format!("{}{}", vi("VI_1", 1), vi("VI_1", 2)),
        "keepalived.conf:6: vrrp_instance VI_1 is already defined at keepalived.conf:1: this one \
         is ignored",
    );
    assert_eq!(loaded.config.instances[0].vrid, 1);
    let loaded = warns(
        &format!("{}{}{}", chk("/bin/true"), chk("/bin/false"), vi("VI_1", 1)),
        "keepalived.conf:4: a vrrp_script or check named chk is already defined at \
         keepalived.conf:1",
    );
    assert_eq!(
        loaded.config.checks,
        [Check::new("chk", Probe::Exec("/bin/true".into()))]
    );
    let group = |name: &str, members: &str| {
        format!("vrrp_sync_group {name} {{\ngroup {{ {members} }}\n}}\n")
    };
    let two = format!("{}{}", vi("VI_1", 1), vi("VI_2", 2));
    let loaded = warns(
        &format!("{two}{}{}", group("G", "VI_1 VI_2"), group("G", "VI_1")),
        "vrrp_sync_group G is already defined at keepalived.conf:11",
    );
    assert_eq!(loaded.config.sync_groups.len(), 1);
    // Members: unknown ones skipped, each in its first group, a group of one warned.
    let loaded = warns(
        &format!("{two}{}", group("G", "VI_1 VI_3 VI_2")),
        "no vrrp_instance named VI_3 (did you mean \"VI_1\"?); the member is skipped",
    );
    assert_eq!(loaded.config.sync_groups[0].members, ["VI_1", "VI_2"]);
    let loaded = warns(
        &format!("{two}{}{}", group("G", "VI_1 VI_2"), group("H", "VI_2")),
        "vrrp_instance VI_2 is already in vrrp_sync_group G (keepalived.conf:11): it stays there",
    );
    assert_eq!(loaded.config.sync_groups.len(), 1);
    warns(
        &format!("{two}{}", group("G", "VI_1")),
        "vrrp_sync_group G has only 1 vrrp_instance",
    );
    let loaded = warns(
        &format!("{two}vrrp_sync_group G {{\ngroup {{ VI_1 }}\ngroup {{ VI_2 }}\n}}\n"),
        "group is already given at keepalived.conf:12: this one is ignored",
    );
    assert_eq!(loaded.config.sync_groups[0].members, ["VI_1"]);
    // A vrrp_script after its tracker: keepalived 2.2.7 runs untracked, the agent tracks it.
    let loaded = warns(
        &format!(
            "vrrp_instance VI_1 {{\n{BASE}\ntrack_script {{ chk }}\n}}\n{}",
            chk("/bin/true")
        ),
        "keepalived.conf:7: track_script chk: vrrp_script chk is defined later (keepalived.conf:9)",
    );
    assert_eq!(loaded.config.instances[0].track_checks[0].name, "chk");
    // Single quotes are quotes on script and notify lines only, as in keepalived.
    let loaded = ok(&format!(
        "vrrp_instance VI_1 {{\n{BASE}\nauthentication {{\nauth_type PASS\nauth_pass 'pw'\n}}\n\
         notify 'a b'\n}}\n"
    ));
    let i = &loaded.config.instances[0];
    assert_eq!(
        (i.auth_pass, i.notify.any.as_deref()),
        (Some(*b"'pw'\0\0\0\0"), Some("a b"))
    );
}

#[test]
fn plain_include_of_an_unreadable_file_is_skipped_as_keepalived_does() {
    let dir = TempDir::new("unreadable");
    fs::create_dir(dir.0.join("conf.d")).unwrap();
    std::os::unix::fs::symlink(dir.0.join("gone"), dir.0.join("conf.d/broken.conf")).unwrap();
    let main = dir.write(
        "keepalived.conf",
        &format!("include conf.d/*.conf\n{}", instance_text("VI_1", 1)),
    );
    let loaded = load(&main).unwrap_or_else(|e| panic!("{}", lines(&e)));
    assert!(
        loaded.warnings[0].message.contains("broken.conf"),
        "{}",
        lines(&loaded.warnings)
    );
    assert!(loaded.warnings[0]
        .message
        .ends_with("skipped, as keepalived does"));
    let main = dir.write("strict.conf", "includew conf.d/broken.conf\n");
    assert!(load(&main).unwrap_err()[0].message.contains("cannot read"));
}

#[test]
fn ignored_keywords_warn_once_each() {
    let text = "global_defs {\n\
                  notification_email {\n    admin@example.com\n    ops@example.com\n  }\n\
                  notification_email_from keepalived@example.com\n\
                  smtp_server 203.0.113.25\n\
                  smtp_connect_timeout 30\n\
                  enable_snmp_vrrp\n\
                  enable_traps\n\
                  lvs_flush\n\
                  vrrp_iptables\n\
                }\n\
                virtual_server 203.0.113.10 80 {\n  lb_algo rr\n  real_server 198.51.100.5 80 {\n\
                    weight 1\n    TCP_CHECK { connect_timeout 3 }\n  }\n}\n\
                virtual_server 203.0.113.10 443 {\n  lb_algo rr\n}\n\
                bfd_instance b1 {\n  neighbor_ip 198.51.100.9\n}\n\
                static_ipaddress {\n  203.0.113.50/24 dev eth1\n}\n\
                static_routes {\n  203.0.113.0/24 via 198.51.100.1\n}\n\
                vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 51\n\
                  virtual_ipaddress { 198.51.100.100 }\n  smtp_alert\n  use_vmac\n}\n\
                vrrp_instance VI_2 {\n  interface eth0\n  virtual_router_id 52\n\
                  virtual_ipaddress { 198.51.100.101 use_vmac }\n  smtp_alert\n  vmac_xmit_base\n}\n";
    let loaded = ok(text);
    let mut keywords: Vec<&str> = loaded
        .warnings
        .iter()
        .map(|w| {
            let rest = w
                .message
                .strip_prefix("ignored: ")
                .expect("an ignored warning");
            rest.split(' ').next().unwrap()
        })
        .collect();
    let all = keywords.len();
    keywords.sort();
    keywords.dedup();
    assert_eq!(keywords.len(), all, "{}", lines(&loaded.warnings));
    assert_eq!(
        keywords,
        [
            "bfd_instance",
            "enable_snmp_vrrp",
            "enable_traps",
            "lvs_flush",
            "notification_email",
            "notification_email_from",
            "smtp_alert",
            "smtp_connect_timeout",
            "smtp_server",
            "static_ipaddress",
            "static_routes",
            "use_vmac",
            "virtual_server",
            "vmac_xmit_base",
            "vrrp_iptables",
        ]
    );
    let repeated = |kw: &str| {
        loaded
            .warnings
            .iter()
            .find(|w| w.message.starts_with(&format!("ignored: {kw} ")))
            .unwrap()
            .to_string()
    };
    assert_eq!(
        repeated("virtual_server"),
        "keepalived.conf:14: ignored: virtual_server is not supported (this agent does VRRP only: \
         no LVS/IPVS virtual servers or real server checks) [and 1 more time]"
    );
    assert!(repeated("use_vmac").ends_with("[and 1 more time]"));
    assert!(repeated("smtp_server").ends_with("a notify script can)"));
}

#[test]
fn errors_name_file_and_line_and_say_what_to_do() {
    let cases: &[(&str, &str)] = &[
        (
            "vrrp_instance VI_1 {\ninterface eth0\npriorty 100\n}",
            "keepalived.conf:3: unknown keyword \"priorty\" in vrrp_instance VI_1 (did you mean \
             \"priority\"?)",
        ),
        (
            "vrrp_instance VI_1 {\n{BASE}\nvrrp_version 3\n}",
            "unknown keyword \"vrrp_version\" in vrrp_instance VI_1: it belongs in global_defs",
        ),
        (
            "global_defs {\nrouter_id a\n}\nfoo_bar 1\n",
            "keepalived.conf:4: unknown keyword \"foo_bar\" in the top level: check its spelling",
        ),
        (
            "vrrp_instance VI_1 {\n{BASE}\npriority\n}",
            "keepalived.conf:7: priority takes one value",
        ),
        (
            "vrrp_instance VI_1\n",
            "keepalived.conf:1: vrrp_instance VI_1 needs a block: add '{' after the name",
        ),
        (
            "vrrp_instance {\n{BASE}\n}",
            "vrrp_instance takes one name: vrrp_instance NAME { … }",
        ),
        (
            "vrrp_instance VI_1 {\n{BASE}\ntrack_script {\nchk_ngnix\n}\n}\n\
             vrrp_script chk_nginx {\nscript \"pidof nginx\"\n}",
            "keepalived.conf:8: track_script chk_ngnix: no vrrp_script or check by that name \
             (did you mean \"chk_nginx\"?)",
        ),
        (
            "vrrp_instance VI_1 {\n{BASE}\n}\nvrrp_instance VI_2 {\n{BASE}\n}",
            "keepalived.conf:8: vrrp_instance VI_2: virtual_router_id 51 on eth0 is already used \
             by vrrp_instance VI_1 (keepalived.conf:1) of the same family",
        ),
        (
            "global_defs {\nvrrp_strict off\n}",
            "keepalived.conf:2: vrrp_strict is not supported (keepalived 2.2.7 ignores \"off\" \
             and turns it on: remove the line to leave it off)",
        ),
        (
            "vrrp_instance VI_1 {\ninterface eth0\nvirtual_router_id 1\nvirtual_ipaddress {\n\
             198.51.100.1/0\n}\n}",
            "keepalived.conf:5: VIP 198.51.100.1/0: a VIP is one address or more",
        ),
        (
            "vrrp_instance VI_1 {\ninterface eth0\nvirtual_router_id 1\nvirtual_ipaddress {\n\
             198.51.100.300\n}\n}",
            "keepalived.conf:1: vrrp_instance VI_1 has no usable (the ones given are skipped or \
             refused above) virtual_ipaddress",
        ),
        (
            "vrrp_instance VI_1 {\n{BASE}\nunicast_peer {\n198.51.100.300\n}\n}",
            "keepalived.conf:7: unicast_peer: no peer address is usable",
        ),
        (
            "vrrp_instance VI_1 {\n{BASE}\nunicast_peer {\n2001:db8::2\n}\n}",
            "keepalived.conf:8: vrrp_instance VI_1: 2001:db8::2 is IPv6, the instance runs VRRP \
             over IPv4 (its first VIP); put the two families in two instances",
        ),
        (
            "vrrp_instance VI_1 {\n{BASE}\nvirtual_router_id 0\n}",
            "keepalived.conf:7: virtual_router_id 0: write a whole number from 1 to 255",
        ),
        (
            "global_defs {\nvrrp_strict\n}",
            "keepalived.conf:2: vrrp_strict is not supported: in keepalived it also turns on \
             no_accept",
        ),
        (
            "vrrp_instance VI_1 {\n{BASE}\nstrict_mode on\n}",
            "strict_mode is not supported",
        ),
        (
            "vrrp_instance VI_1 {\n{BASE}\nauthentication {\nauth_type AH\nauth_pass x\n}\n}",
            "keepalived.conf:8: auth_type AH (IPsec AH) is not supported",
        ),
        (
            "vrrp_instance VI_1 {\ninterface eth0\nvirtual_router_id 1\nvirtual_ipaddress {\n\
             2001:db8::1\n}\nunicast_src_ip 198.51.100.1\n}",
            "keepalived.conf:7: vrrp_instance VI_1: 198.51.100.1 is IPv4, the instance runs VRRP \
             over IPv6",
        ),
        (
            "vrrp_instance VI_1 {\ninterface eth0\nvirtual_router_id 1\nvirtual_ipaddress {\n\
             2001:db8::1\n}\nunicast_peer {\n2001:db8::2\n}\n}",
            "vrrp_instance VI_1: unicast peer 2001:db8::2 needs unicast_src_ip",
        ),
        (
            "vrrp_instance VI_1 {\ninterface eth0\nvirtual_router_id 1\nvirtual_ipaddress {\n\
             198.51.100.1/24 label eth1:1\n}\n}",
            "keepalived.conf:5: vrrp_instance VI_1: VIP 198.51.100.1 label \"eth1:1\" must start \
             with the interface name",
        ),
        (
            "vrrp_instance VI_1 {\ninterface eth0\nvirtual_router_id 1\n}",
            "keepalived.conf:1: vrrp_instance VI_1 has no virtual_ipaddress",
        ),
        (
            "vrrp_instance VI_1 {\nvirtual_ipaddress { 198.51.100.1 }\n}",
            "vrrp_instance VI_1 needs an interface and a virtual_router_id",
        ),
        (
            "vrrp_script chk {\nscript killall -0 nginx\n}",
            "keepalived.conf:2: script takes one command line: quote it, as in script \"killall \
             -0 nginx\"",
        ),
        (
            "vrrp_script chk {\ninterval 2\n}",
            "keepalived.conf:1: vrrp_script chk has no script",
        ),
        (
            "vrrp_instance VI_1 {\n{BASE}\nnotify_master /etc/keepalived/notify.sh master\n}",
            "quote the command line: notify_master \"/etc/keepalived/notify.sh master\"",
        ),
        (
            "vrrp_script chk {\nscript \"pidof nginx\n}",
            "keepalived.conf:2: unterminated quote",
        ),
        ("@main router_id a", "conditional configuration"),
        ("include", "keepalived.conf:1: include needs a file pattern"),
        ("$IF=eth0", "parameter definitions"),
        ("net_namespace blue", "ip netns exec NAME"),
        (
            "vrrp_instance VI_1 {\n{BASE}\ntrack_file {\nf1\n}\n}",
            "track_file is not supported: use a vrrp_script",
        ),
        (
            "vrrp_instance VI_1 {\n{BASE}\nnative_ipv6\n}",
            "keepalived.conf:7: vrrp_instance VI_1: native_ipv6 with IPv4 VIPs",
        ),
        (
            "global_defs {\nvrrp_mcast_group4 224.0.0.19\n}",
            "224.0.0.18 / ff02::12 (or unicast peers) only",
        ),
        (
            "global_defs {\nvrrp_mcast_group6 ff02::13\n}",
            "vrrp_mcast_group6 ff02::13: this agent sends adverts to 224.0.0.18 / ff02::12",
        ),
        (
            "vrrp_script chk {\nscript \"pidof nginx\"\n}\nvrrp_instance VI_1 {\n{BASE}\n\
             track_script {\nchk weight -10 reverse\n}\n}",
            "write weight N reverse in the vrrp_script instead",
        ),
        (
            "vrrp_agent {\ncheck web {\nhttp https://127.0.0.1/\n}\n}",
            "https is not supported",
        ),
        (
            "vrrp_agent {\ncheck web {\nprocess nginx\ntcp 127.0.0.1:80\n}\n}",
            "keepalived.conf:4: a check does one thing, and keepalived.conf:3 already says what",
        ),
        (
            "vrrp_agent {\ncheck web {\ninterval 1\n}\n}",
            "check web checks nothing",
        ),
        (
            "vrrp_agent {\ncheck web {\nprocess /usr/sbin/nginx\n}\n}",
            "process /usr/sbin/nginx: write the process name as ps -C matches it",
        ),
        (
            "vrrp_agent {\ncheck web {\ntcp localhost:80\n}\n}",
            "tcp localhost:80: write ADDR:PORT with an IP address",
        ),
        (
            "vrrp_agent {\nxdp fast\n}",
            "keepalived.conf:2: xdp fast: write auto, native, skb, tc or off",
        ),
        (
            "global_defs {\nv3_checksum_as_v2\n}\nvrrp_agent {\nchecksum pseudo\n}",
            "keepalived.conf:5: the VRRPv3 checksum is already set otherwise at keepalived.conf:2",
        ),
        (
            "vrrp_instance VI_1 {\n{BASE}\nnopreempt {\n}\n}",
            "nopreempt takes no value",
        ),
    ];
    for (text, want) in cases {
        let text = text.replace("{BASE}", BASE);
        let got = errors(&text);
        assert!(
            got.iter().any(|e| e.contains(want)),
            "want {want:?} in:\n{}\n---\n{text}",
            got.join("\n")
        );
    }
}

#[test]
fn every_error_is_reported_not_only_the_first() {
    let got = errors(&format!(
        "vrrp_instance VI_1 {{\n{BASE}\npriority\nmcast_dst_ip 224.0.0.19\nnopreemt\n}}\n\
         global_defs {{\nvrrp_strict\n}}\n"
    ));
    assert_eq!(got.len(), 4, "{got:#?}");
    assert!(got[2].contains("did you mean \"nopreempt\""), "{got:#?}");
}

#[test]
fn comments_quotes_and_continuations() {
    let text = "! keepalived.conf\n# comment\nglobal_defs { # trailing\n\
                router_id \"edge #1\" ! comment after a quoted value\n}\n\
                vrrp_script chk {\nscript \"/bin/sh -c 'pidof nginx || exit 1'\"\n}\n\
                vrrp_instance VI_1 {\ninterface eth0\nvirtual_router_id \\\n 51\n\
                virtual_ipaddress {\n198.51.100.100 # the VIP\n}\ntrack_script {\nchk\n}\n\
                notify_master \"/usr/bin/logger \\\"became master\\\"\"\n}\n";
    let config = ok(text).config;
    assert_eq!(config.global.router_id.as_deref(), Some("edge #1"));
    assert_eq!(
        config.checks[0].probe,
        Probe::Exec("/bin/sh -c 'pidof nginx || exit 1'".into())
    );
    assert_eq!(config.instances[0].vrid, 51);
    // Backslashes are kept for the script runner, which reads them as keepalived does.
    assert_eq!(
        config.instances[0].notify.master.as_deref(),
        Some("/usr/bin/logger \\\"became master\\\"")
    );
}

/// A directory of its own under the system's temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "vrrp-agent-keepalived-{name}-{}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn instance_text(name: &str, vrid: u8) -> String {
    format!(
        "vrrp_instance {name} {{\n  interface eth0\n  virtual_router_id {vrid}\n  \
         virtual_ipaddress {{ 198.51.100.{vrid} }}\n}}\n"
    )
}

#[test]
fn include_globs_in_sorted_order_relative_to_the_including_file() {
    let dir = TempDir::new("glob");
    dir.write("conf.d/20-b.conf", &instance_text("VI_B", 2));
    dir.write(
        "conf.d/10-a.conf",
        &(instance_text("VI_A", 1) + "include ../scripts/*.conf\n"),
    );
    dir.write("conf.d/notes.txt", "not a config");
    dir.write(
        "scripts/chk.conf",
        "vrrp_script chk {\n script \"pidof nginx\"\n}\n",
    );
    dir.write("x.conf", &instance_text("VI_X", 3));
    dir.write("y.conf", &instance_text("VI_Y", 4));
    let main = dir.write(
        "keepalived.conf",
        "global_defs {\n  router_id r1\n}\ninclude conf.d/*.conf\ninclude \"{y,x}.conf\"\n",
    );
    let loaded = load(&main).unwrap_or_else(|e| panic!("{}", lines(&e)));
    let names: Vec<&str> = loaded
        .config
        .instances
        .iter()
        .map(|i| i.name.as_str())
        .collect();
    assert_eq!(names, ["VI_A", "VI_B", "VI_Y", "VI_X"]);
    assert_eq!(loaded.config.checks[0].name, "chk");
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

#[test]
fn errors_in_included_files_name_that_file() {
    let dir = TempDir::new("where");
    let inc = dir.write("conf.d/vi.conf", "vrrp_instance VI_1 {\n  priorty 100\n}\n");
    let main = dir.write("keepalived.conf", "include conf.d/*.conf\n");
    let got = load(&main).unwrap_err();
    let places: Vec<(&Path, usize)> = got.iter().map(|d| (d.file.as_path(), d.line)).collect();
    // The unknown keyword, and the instance without interface or VRID.
    assert_eq!(
        places,
        [(inc.as_path(), 1), (inc.as_path(), 2)],
        "{}",
        lines(&got)
    );
}

#[test]
fn include_without_match_warns_and_strict_variants_refuse() {
    let dir = TempDir::new("nomatch");
    let main = dir.write(
        "keepalived.conf",
        &format!("include conf.d/*.conf\n{}", instance_text("VI_1", 1)),
    );
    let loaded = load(&main).unwrap();
    assert_eq!(loaded.warnings.len(), 1);
    assert_eq!(loaded.warnings[0].line, 1);
    assert!(loaded.warnings[0]
        .message
        .contains("include conf.d/*.conf: no file matches"));
    let main = dir.write("strict.conf", "includea conf.d/*.conf\n");
    let got = load(&main).unwrap_err();
    assert!(got[0].message.contains("no file matches"), "{got:?}");
}

#[test]
fn include_loops_are_refused() {
    let dir = TempDir::new("loop");
    dir.write("a.conf", "include b.conf\n");
    dir.write("b.conf", "include a.conf\n");
    let main = dir.write("keepalived.conf", "include a.conf\n");
    let got = load(&main).unwrap_err();
    assert_eq!(got.len(), 1, "{}", lines(&got));
    assert!(got[0].file.ends_with("b.conf"));
    assert!(got[0].message.starts_with("include loop: "), "{}", got[0]);
    let itself = dir.write("self.conf", "include self.conf\n");
    assert!(load(&itself).unwrap_err()[0]
        .message
        .contains("include loop"));
}

#[test]
fn include_skips_executables_as_keepalived_does() {
    let dir = TempDir::new("exec");
    let script = dir.write("conf.d/check.sh", "#!/bin/sh\npidof nginx\n");
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    dir.write("conf.d/vi.conf", &instance_text("VI_1", 1));
    let main = dir.write("keepalived.conf", "include conf.d/*\n");
    let loaded = load(&main).unwrap();
    assert_eq!(loaded.config.instances.len(), 1);
    assert!(loaded.warnings[0]
        .message
        .contains("is executable, skipped"));
}

#[test]
fn places_of_checks_and_instances_are_kept_apart_from_the_config() {
    let dir = TempDir::new("places");
    let inc = dir.write("conf.d/vi.conf", &instance_text("VI_1", 1));
    let text = "vrrp_script chk {\n  script \"pidof nginx\"\n}\n\
                vrrp_agent {\n  check web { tcp 127.0.0.1:80 }\n}\ninclude conf.d/*.conf\n";
    let main = dir.write("keepalived.conf", text);
    let loaded = load(&main).unwrap_or_else(|e| panic!("{}", lines(&e)));
    let place = |p: Option<&Place>| p.map(ToString::to_string);
    assert_eq!(
        place(loaded.check_place("chk")),
        Some(format!("{}:1", main.display()))
    );
    assert_eq!(
        place(loaded.check_place("web")),
        Some(format!("{}:5", main.display()))
    );
    assert_eq!(
        place(loaded.instance_place("VI_1")),
        Some(format!("{}:1", inc.display()))
    );
    assert_eq!(loaded.check_place("nope"), None);
    // The same configuration, lines moved: the model compares equal, the places do not.
    let moved = dir.write("moved.conf", &format!("\n\n{text}"));
    let reloaded = load(&moved).unwrap();
    assert_eq!(reloaded.config, loaded.config);
    assert_eq!(reloaded.check_place("chk").unwrap().line, 3);
}

#[test]
fn unreadable_file_is_one_error() {
    let got = load(Path::new("/nonexistent/keepalived.conf")).unwrap_err();
    assert_eq!(got.len(), 1);
    assert!(got[0]
        .to_string()
        .starts_with("/nonexistent/keepalived.conf: cannot read the configuration"));
}

#[test]
fn nesting_past_the_limit_is_an_error_not_a_crash() {
    // Deep enough to overflow any stack if anything recursed once per level.
    let got = errors(&"a {\n".repeat(100_000));
    assert!(
        got.iter()
            .any(|e| e.starts_with("keepalived.conf:17: blocks nested more than 16 deep")),
        "{got:?}"
    );
    // One error per level kept, not per level written.
    assert!(got.len() < 40, "{}", got.len());
    // A block past the limit is skipped whole; what follows it is read.
    let text = format!(
        "{}{}vrrp_instance VI_1 {{\n{BASE}\nprioritty 1\n}}\n",
        "a {\n".repeat(20),
        "}\n".repeat(20)
    );
    let got = errors(&text);
    assert!(
        got.iter().any(|e| e.contains("did you mean \"priority\"")),
        "{got:?}"
    );
}

#[test]
fn files_past_the_size_limits_are_refused() {
    let dir = TempDir::new("size");
    let big = format!("{}\n", "#".repeat(4 << 20));
    let main = dir.write("big.conf", &big);
    let got = load(&main).unwrap_err();
    assert!(
        got[0]
            .to_string()
            .contains("big.conf: cannot read the configuration: larger than 4 MiB"),
        "{got:?}"
    );
    let main = dir.write("main.conf", "include big.conf\n");
    let got = load(&main).unwrap_err();
    assert!(
        got[0]
            .to_string()
            .starts_with(&format!("{}:1: include: cannot read", main.display())),
        "{got:?}"
    );
    // Just under the limit each, too much together.
    let almost = format!("{}\n", "#".repeat((4 << 20) - 2));
    for n in 0..5 {
        dir.write(&format!("part{n}.conf"), &almost);
    }
    let main = dir.write("parts.conf", "include part*.conf\n");
    let got = load(&main).unwrap_err();
    assert!(got[0].message.contains("pass 16 MiB"), "{got:?}");
}

#[test]
fn include_depth_and_brace_alternatives_are_bounded() {
    let dir = TempDir::new("depth");
    for n in 0..20 {
        dir.write(&format!("{n}.conf"), &format!("include {}.conf\n", n + 1));
    }
    dir.write("20.conf", "");
    let got = load(&dir.0.join("0.conf")).unwrap_err();
    assert_eq!(got.len(), 1, "{}", lines(&got));
    assert!(got[0].file.ends_with("15.conf"), "{}", got[0]);
    assert!(got[0].message.contains("more than 16 deep"), "{}", got[0]);
    let got = errors(&format!("include {}\n", "{a,b}".repeat(11)));
    assert!(
        got[0].contains("more than 1024 {a,b} alternatives"),
        "{got:?}"
    );
    let got = errors(&format!("include {}\n", "*".repeat(5000)));
    assert!(got[0].contains("longer than 4096 bytes"), "{got:?}");
}

/// The realistic configurations under tests/configs.
fn example(name: &str) -> Loaded {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/configs")
        .join(name);
    load(&path).unwrap_or_else(|e| panic!("{name}:\n{}", lines(&e)))
}

#[test]
fn nginx_master_and_backup_pair() {
    let master = example("nginx-master.conf");
    let backup = example("nginx-backup.conf");
    let (m, b) = (&master.config.instances[0], &backup.config.instances[0]);
    assert_eq!((m.priority, b.priority), (101, 100));
    for i in [m, b] {
        assert_eq!((i.iface.as_str(), i.vrid), ("eth0", 51));
        assert_eq!(i.version, Version::V2);
        assert_eq!(i.advert_interval, Duration::from_secs(1));
        assert_eq!(i.auth_pass, Some(*b"K33pAl1v"));
        assert_eq!(i.vips, vec![vip([203, 0, 113, 10], 24)]);
        assert_eq!(i.track_checks[0].name, "chk_nginx");
        assert!(i.preempt);
    }
    assert_eq!(
        master.config.checks,
        vec![Check {
            name: "chk_nginx".into(),
            probe: Probe::Exec("/usr/bin/killall -0 nginx".into()),
            interval: Duration::from_secs(2),
            timeout: Duration::from_secs(2),
            weight: -20,
            reverse: false,
            rise: 1,
            fall: 2,
            user: None,
            init_fail: false,
        }]
    );
    assert_eq!(
        backup.config.checks[0].probe,
        Probe::Exec("pidof nginx".into())
    );
    assert_eq!(backup.config.checks[0].weight, 2);
    assert_eq!(
        m.notify.master.as_deref(),
        Some("/etc/keepalived/notify.sh MASTER")
    );
    // The e-mail settings of the tutorials: one warning each.
    let ignored: Vec<&str> = master
        .warnings
        .iter()
        .map(|w| w.message.split(' ').nth(1).unwrap())
        .collect();
    assert_eq!(
        ignored,
        [
            "notification_email",
            "notification_email_from",
            "smtp_server",
            "smtp_connect_timeout"
        ]
    );
    assert!(backup.warnings.is_empty(), "{:?}", backup.warnings);
}

#[test]
fn dual_master_with_two_instances() {
    let loaded = example("dual-master.conf");
    let [a, b] = &loaded.config.instances[..] else {
        panic!("two instances")
    };
    assert_eq!((a.name.as_str(), a.vrid, a.priority), ("VI_1", 51, 150));
    assert_eq!((b.name.as_str(), b.vrid, b.priority), ("VI_2", 52, 100));
    let on_eth0 = |addr| Vip {
        dev: Some("eth0".into()),
        ..vip(addr, 24)
    };
    assert_eq!(a.vips, vec![on_eth0([203, 0, 113, 10])]);
    assert_eq!(b.vips, vec![on_eth0([203, 0, 113, 11])]);
    assert_eq!(a.track_checks, b.track_checks);
    assert_eq!(
        loaded.config.checks[0].probe,
        Probe::Exec("pidof nginx".into())
    );
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

#[test]
fn unicast_peers_without_multicast() {
    let loaded = example("unicast.conf");
    let i = &loaded.config.instances[0];
    assert_eq!(i.src_ip, Some(IpAddr::from([198, 51, 100, 2])));
    assert_eq!(
        i.unicast_peers,
        [
            Ipv4Addr::new(198, 51, 100, 3),
            Ipv4Addr::new(198, 51, 100, 4)
        ]
    );
    assert!(!i.preempt);
    assert_eq!(i.priority, 100);
    assert_eq!(loaded.config.global.router_id.as_deref(), Some("lb2"));
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

#[test]
fn dual_stack_one_instance_per_family() {
    let loaded = example("dual-stack.conf");
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let [v4, v6] = &loaded.config.instances[..] else {
        panic!("two instances")
    };
    assert!(!v4.is_ipv6() && v6.is_ipv6());
    assert_eq!((v4.version, v6.version), (Version::V2, Version::V3));
    let addrs = |vips: &[Vip]| {
        vips.iter()
            .map(|v| (v.addr.to_string(), v.prefix_len))
            .collect()
    };
    let vips: Vec<(String, u8)> = addrs(&v6.vips);
    assert_eq!(
        vips,
        [("fe80::1".into(), 128), ("2001:db8::100".into(), 64)]
    );
    // Excluded VIPs may mix families, as in keepalived.
    let excluded: Vec<(String, u8)> = addrs(&v6.excluded_vips);
    assert_eq!(
        excluded,
        [("2001:db8::101".into(), 128), ("198.51.100.101".into(), 32)]
    );
}

/// keepalived's tolerance of IPv6 instances: what it drops or fixes, with its warning.
#[test]
fn ipv6_instances_follow_keepalived() {
    let v6 = "interface eth0\nvirtual_router_id 51";
    let cases: &[(String, &str, Assert<VrrpInstance>)] = &[
        (
            format!("{v6}\nvirtual_ipaddress {{\n2001:db8::1\n}}"),
            "the first IPv6 VIP should be link local",
            |i| assert_eq!(i.vips.len(), 1),
        ),
        (
            format!("{v6}\nvirtual_ipaddress {{\nfe80::1\n198.51.100.1\n2001:db8::1\n}}"),
            "keepalived.conf:6: VIP 198.51.100.1: the address family must match the instance's \
             (IPv6, from its first VIP); skipped",
            |i| assert_eq!(i.vips.len(), 2),
        ),
        (
            format!("{v6}\nversion 2\nvirtual_ipaddress {{\nfe80::1\n}}"),
            "vrrp_version 2 conflicts with its IPv6 addresses",
            |i| assert_eq!(i.version, Version::V3),
        ),
        (
            format!("{v6}\nvirtual_ipaddress {{\nfe80::1\n2001:db8::1/64 brd + -nodad\n}}"),
            "VIP 2001:db8::1: brd has no meaning for an IPv6 address",
            |i| assert_eq!(i.vips[1].prefix_len, 64),
        ),
        (
            format!("{v6}\nvirtual_ipaddress {{\nfe80::1\n2001:db8::1 -nodad\n}}"),
            "VIP 2001:db8::1: -nodad is ignored",
            |i| assert_eq!(i.vips[1].prefix_len, 128),
        ),
        (
            format!("{v6}\nvirtual_ipaddress {{\nfe80::1/130\n}}"),
            "keepalived takes a length past 128 as /128",
            |i| assert_eq!(i.vips[0].prefix_len, 128),
        ),
        (
            format!(
                "{v6}\nvirtual_ipaddress {{\nfe80::1\n{}}}",
                (1..=95)
                    .map(|n| format!("2001:db8::{n:x}\n"))
                    .collect::<String>()
            ),
            "VIP 2001:db8::59: an IPv6 advert carries at most 89 addresses",
            |i| assert_eq!((i.vips.len(), i.excluded_vips.len()), (89, 7)),
        ),
    ];
    for (body, warning, check) in cases {
        let loaded = ok(&format!("vrrp_instance VI_1 {{\n{body}\n}}\n"));
        let warnings = lines(&loaded.warnings);
        assert!(
            warnings.contains(warning),
            "want {warning:?} in:\n{warnings}---\n{body}"
        );
        check(&loaded.config.instances[0]);
    }
    // Link-local first, or unicast peers (keepalived does not warn then): no warning.
    let quiet = [
        format!("{v6}\nvirtual_ipaddress {{\nfe80::1\n2001:db8::1\n}}"),
        format!(
            "{v6}\nvirtual_ipaddress {{\n2001:db8::1\n}}\nunicast_src_ip fe80::2\n\
             unicast_peer {{\nfe80::3\n}}"
        ),
        format!("{v6}\nvirtual_ipaddress {{\n2001:db8::1\n}}\nunicast_peer {{\nfe80::3\n}}"),
    ];
    for body in quiet {
        let loaded = ok(&format!("vrrp_instance VI_1 {{\n{body}\n}}\n"));
        assert!(loaded.warnings.is_empty(), "{:?}\n{body}", loaded.warnings);
        let i = &loaded.config.instances[0];
        assert!(i.is_ipv6() && i.version == Version::V3);
    }
}

#[test]
fn labels_and_excluded_addresses() {
    let loaded = example("labels.conf");
    let i = &loaded.config.instances[0];
    let labels: Vec<Option<&str>> = i.vips.iter().map(|v| v.label.as_deref()).collect();
    assert_eq!(labels, [Some("eth1:1"), Some("eth1:2"), None]);
    assert_eq!(i.vips[2].dev.as_deref(), Some("eth2"));
    assert_eq!(i.excluded_vips.len(), 2);
    assert_eq!(i.excluded_vips[1].scope, 253);
    assert_eq!(i.track_interfaces[0].name, "eth2");
    assert!(!i.track_primary);
}

#[test]
fn v3_with_sub_second_adverts_and_sync_group() {
    let loaded = example("v3-fast.conf");
    let config = &loaded.config;
    for i in &config.instances {
        assert_eq!(i.version, Version::V3);
        assert_eq!(i.advert_interval, Duration::from_millis(100));
        assert_eq!(i.garp.interval, Duration::from_millis(1));
        assert_eq!(i.garp.repeat_after, None);
    }
    assert_eq!(config.sync_groups[0].members, ["VI_WEB", "VI_DB"]);
    assert_eq!(
        config.sync_groups[0].notify.any.as_deref(),
        Some("/etc/keepalived/notify.sh")
    );
    assert!(config.global.script_security);
    assert_eq!(config.global.startup_delay, Duration::from_secs(5));
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

#[test]
fn includes_as_packaged_by_distributions() {
    let loaded = example("with-includes/keepalived.conf");
    let names: Vec<&str> = loaded
        .config
        .instances
        .iter()
        .map(|i| i.name.as_str())
        .collect();
    assert_eq!(names, ["VI_PUBLIC", "VI_PRIVATE"]);
    assert_eq!(loaded.config.checks[0].name, "chk_nginx");
}

#[test]
fn agent_extension_with_in_process_checks() {
    let loaded = example("agent-checks.conf");
    let config = &loaded.config;
    assert_eq!(config.global.xdp, XdpMode::Skb);
    let checks: Vec<&Probe> = config.checks.iter().map(|s| &s.probe).collect();
    assert_eq!(
        checks,
        [
            &Probe::Process("nginx".into()),
            &Probe::Http {
                addr: "127.0.0.1:80".parse().unwrap(),
                host: Some("www.example.com".into()),
                path: "/healthz".into(),
                status: 200,
            },
        ]
    );
    assert_eq!(config.instances[0].track_checks.len(), 2);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}
