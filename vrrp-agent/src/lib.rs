//! VRRP agent library.
pub mod agent;
pub mod clock;
pub mod config;
pub mod control;
pub mod dataplane;
pub mod election;
pub mod init;
pub mod instance;
pub mod logging;
pub mod metrics;
pub mod net;
pub mod notify;
pub mod pidfile;
pub mod privileges;
pub mod sched;
pub mod script;
pub mod service;
pub mod sync_group;
pub mod task;
#[cfg(test)]
mod testing;
pub mod track;
