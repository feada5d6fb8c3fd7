//! VRRP agent library.
pub mod config;
