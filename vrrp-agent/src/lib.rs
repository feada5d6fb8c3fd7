//! VRRP agent library.
pub mod clock;
pub mod config;
pub mod dataplane;
pub mod election;
pub mod instance;
pub mod net;
