//! Settings of `ftpgate serve` that concern FTP alone (those of every session are
//! `crate::gateway::server::Config`).

use std::net::{Ipv4Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: Vec<SocketAddr>,
    pub passive_ports: RangeInclusive<u16>,
    /// Address announced in `PASV` replies (for NAT); default: the control connection's
    /// local address.
    pub passive_address: Option<Ipv4Addr>,
    pub active: bool,
    /// Data connection accept/connect, and silence during a transfer.
    pub data_timeout: Duration,
    pub tls: crate::gateway::tls::Policy,
    /// Gateway-wide default for data connections resuming the control TLS session.
    pub tls_reuse: crate::store::senders::TlsReuse,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: vec![SocketAddr::from(([0, 0, 0, 0], 21))],
            passive_ports: 50000..=50999,
            passive_address: None,
            active: true,
            data_timeout: Duration::from_secs(60),
            tls: crate::gateway::tls::Policy::Off,
            tls_reuse: crate::store::senders::TlsReuse::Required,
        }
    }
}
