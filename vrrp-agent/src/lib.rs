//! VRRP agent library.
pub mod config;
pub mod election;
