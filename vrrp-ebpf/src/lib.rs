#![no_std]
// Library target so vrrp-agent can name this crate as a build-dependency (cargo then rebuilds the
// agent when the XDP program changes); the program itself is the `vrrp` binary.
