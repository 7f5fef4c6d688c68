//! PASV, EPSV, PORT, EPRT (RFC 959, RFC 2428) and opening the data connection.

use std::net::{IpAddr, SocketAddr};

use crate::ftp::datachan::{self, Conn, DataError, Plan};
use crate::ftp::proto::Reply;
use crate::ftp::proto::addr::{canonical, check_active, epsv_text, pasv_text};
use crate::ftp::session::Session;

impl Session {
    async fn passive_listener(&mut self) -> Result<u16, Reply> {
        let ip = canonical(self.local.ip());
        let listener = datachan::listen_passive(ip, &self.srv.config.passive_ports).await;
        match listener.and_then(|l| Ok((l.local_addr()?.port(), l))) {
            Ok((port, listener)) => {
                self.plan = Plan::Passive(listener);
                Ok(port)
            }
            Err(e) => {
                log::error!("passive listener on {ip}: {e}");
                Err(crate::ftp::errors::no_passive_port())
            }
        }
    }

    pub(crate) async fn pasv(&mut self) -> Reply {
        if self.epsv_all {
            return Reply::new(503, "EPSV ALL was sent: only EPSV may be used now.");
        }
        let announce = match (self.srv.config.passive_address, canonical(self.local.ip())) {
            (Some(ip), _) => ip,
            (None, IpAddr::V4(ip)) => ip,
            (None, IpAddr::V6(_)) => {
                return Reply::new(522, "PASV works only over IPv4; use EPSV (1).");
            }
        };
        match self.passive_listener().await {
            Ok(port) => Reply::new(227, pasv_text(announce, port)),
            Err(r) => r,
        }
    }

    pub(crate) async fn epsv(&mut self, arg: Option<&str>) -> Reply {
        match arg.map(|a| a.trim().to_ascii_uppercase()) {
            Some(a) if a == "ALL" => {
                self.epsv_all = true;
                return Reply::new(200, "EPSV ALL accepted: only EPSV from now on.");
            }
            Some(a) if a != "1" && a != "2" => {
                return Reply::new(522, "Network protocol not supported, use (1,2).");
            }
            _ => {}
        }
        match self.passive_listener().await {
            Ok(port) => Reply::new(229, epsv_text(port)),
            Err(r) => r,
        }
    }

    /// PORT and EPRT: checked before anything connects.
    pub(crate) fn active(&mut self, target: SocketAddr) -> Reply {
        if !self.srv.config.active {
            return Reply::new(
                502,
                "Active mode is disabled on this gateway; use PASV or EPSV.",
            );
        }
        if self.epsv_all {
            return Reply::new(503, "EPSV ALL was sent: only EPSV may be used now.");
        }
        if let Err(why) = check_active(target, self.peer.ip()) {
            log::warn!(
                "refused active-mode target {target} from {}: {why}",
                self.peer
            );
            self.plan = Plan::None;
            return Reply::new(501, format!("Refused: {why}."));
        }
        self.plan = Plan::Active(target);
        Reply::new(200, "Active mode target accepted.")
    }

    /// The data connection for the current transfer (the plan is used up). Under PROT P
    /// the caller sends `150` and then calls [`Session::protect`]: clients start the TLS
    /// handshake only after the `150`.
    pub(crate) async fn open_data(&mut self) -> Result<Box<dyn Conn>, Reply> {
        if let Some(refusal) = self.clear_data_refused() {
            self.plan = Plan::None;
            return Err(refusal);
        }
        let timeout = self.data_timeout();
        let opened = match std::mem::take(&mut self.plan) {
            Plan::None => Err(DataError::NoPlan),
            Plan::Passive(listener) => {
                datachan::accept_from(&listener, self.peer.ip(), timeout).await
            }
            Plan::Active(target) => datachan::connect(target, timeout).await,
        };
        match opened {
            Ok(stream) => Ok(Box::new(stream)),
            Err(e) => Err(crate::ftp::errors::data(&e)),
        }
    }
}
