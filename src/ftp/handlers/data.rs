//! Passive listeners and opening the data connection (RFC 959, RFC 2428); which of
//! PASV, EPSV, PORT and EPRT may be used is decided in the core.

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::ftp::core::passive_reply;
use crate::ftp::datachan::{self, Conn, DataError, Plan};
use crate::ftp::proto::Reply;
use crate::ftp::session::Session;
use crate::net::canonical;

/// How long a passive reply to libcurl waits when it follows a transfer: long enough that
/// libcurl has looked at the control connection once and found nothing, even on a busy
/// two-core box with the client on it (200 µs lost the race about once in 200 files
/// there, 1 ms about once in 1,300), short against the few milliseconds a file takes. See
/// docs/ARCHITECTURE.md, "Replies libcurl can miss".
pub(crate) const PASSIVE_REPLY_WAIT: Duration = Duration::from_millis(2);

impl Session {
    /// `PASV`/`EPSV` after the core allowed it: a listener on a free passive port.
    ///
    /// To a libcurl client the reply waits [`PASSIVE_REPLY_WAIT`]: when it follows a
    /// transfer, and before the connection's first transfer while no `TYPE` came yet.
    /// libcurl before 8.4 (the FTP client of much device firmware) looks for the reply
    /// once without waiting right after sending `PASV`/`EPSV`; if it is already there, it
    /// forgets to call itself again and sleeps before it connects: a second for the
    /// second and later files of a connection, about 0.2 s (its connect phase's timer)
    /// for the first. Our reply beat that look for nearly every file after the first, and
    /// for about half the first ones. The wait is a timer: the thread serves other
    /// sessions meanwhile, and other clients (which send `TYPE` first) never wait.
    /// `tests/curl_stall.rs`.
    pub(crate) async fn passive(&mut self, announce: Option<Ipv4Addr>) -> Reply {
        let ip = canonical(self.core.settings().local);
        let listener = datachan::listen_passive(ip, &self.ftp.passive_ports).await;
        match listener.and_then(|l| Ok((l.local_addr()?.port(), l))) {
            Ok((port, listener)) => {
                self.plan = Plan::Passive(listener);
                let libcurl = (self.after_transfer && self.type_after_passive) || !self.type_seen;
                if libcurl {
                    smol::Timer::after(PASSIVE_REPLY_WAIT).await;
                }
                passive_reply(announce, port)
            }
            Err(e) => {
                log::error!("passive listener on {ip}: {e}");
                crate::ftp::errors::no_passive_port()
            }
        }
    }

    /// Opens the data connection of a transfer: accept or connect, `150 opening`, then
    /// TLS under PROT P. `Err`: the reply to give instead; the transfer does not happen.
    pub(crate) async fn open_transfer(
        &mut self,
        opening: String,
    ) -> std::io::Result<Result<Box<dyn Conn>, Reply>> {
        let data = match self.open_data().await {
            Ok(d) => d,
            Err(r) => return Ok(Err(r)),
        };
        self.reply(Reply::new(150, opening)).await?;
        Ok(self.protect(data).await)
    }

    /// The data connection for the current transfer (the plan is used up). Under PROT P
    /// the caller sends `150` and then calls [`Session::protect`]: clients start the TLS
    /// handshake only after the `150`.
    pub(crate) async fn open_data(&mut self) -> Result<Box<dyn Conn>, Reply> {
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
