//! Uploads, listings and data connections: where an upload lands and how it resumes,
//! which data-connection commands may be used, and what the TLS policy allows clear.

use std::net::{IpAddr, SocketAddr};

use super::{Action, Core, Resume, Upload, UploadKind, reply};
use crate::ftp::listing::Style;
use crate::ftp::proto::Reply;
use crate::ftp::proto::addr::check_active;
use crate::net::canonical;
use crate::store::namespace::Overwrite;

impl Core {
    pub(super) fn upload(&mut self, kind: UploadKind, arg: Option<String>) -> Action {
        let rest = self.rest.take();
        if let Some(refused) = self.clear_data_refused() {
            return refused;
        }
        let configured = self
            .login
            .as_ref()
            .map_or(Overwrite::Replace, |l| l.pipe.overwrite);
        let target = match (kind, arg) {
            (UploadKind::Stou, None) => Ok((
                self.cwd
                    .child(&format!("ftpgate-{}.dat", crate::names::random_token(10))),
                Overwrite::KeepBoth,
            )),
            (UploadKind::Stou, Some(a)) => self.resolve(&a).map(|p| (p, Overwrite::KeepBoth)),
            // Appending continues the same file; only `refuse` forbids touching it.
            (UploadKind::Appe, Some(a)) => self.resolve(&a).map(|p| {
                let policy = match configured {
                    Overwrite::Refuse => Overwrite::Refuse,
                    _ => Overwrite::Replace,
                };
                (p, policy)
            }),
            (_, Some(a)) => self.resolve(&a).map(|p| (p, configured)),
            (_, None) => Err(reply(501, "A file name is needed.")),
        };
        let (path, policy) = match target {
            Ok(t) => t,
            Err(refused) => return refused,
        };
        let resume = match (kind, rest) {
            (UploadKind::Appe, _) => Resume::End,
            (_, Some(n)) if n > 0 => Resume::At(n),
            _ => Resume::No,
        };
        Action::Upload(Upload {
            kind,
            path,
            policy,
            resume,
        })
    }

    pub(super) fn list(&mut self, style: Style, arg: Option<String>) -> Action {
        if let Some(refused) = self.clear_data_refused() {
            return refused;
        }
        match self.resolve(arg.as_deref().unwrap_or(".")) {
            Ok(path) => Action::List { style, path, arg },
            Err(refused) => refused,
        }
    }

    pub(super) fn pasv(&mut self) -> Action {
        if self.epsv_all {
            return reply(503, "EPSV ALL was sent: only EPSV may be used now.");
        }
        match (
            self.settings.passive_address,
            canonical(self.settings.local),
        ) {
            (Some(ip), _) | (None, IpAddr::V4(ip)) => Action::Passive { announce: Some(ip) },
            (None, IpAddr::V6(_)) => reply(522, "PASV works only over IPv4; use EPSV (1)."),
        }
    }

    pub(super) fn epsv(&mut self, arg: Option<&str>) -> Action {
        match arg.map(|a| a.trim().to_ascii_uppercase()) {
            Some(a) if a == "ALL" => {
                self.epsv_all = true;
                reply(200, "EPSV ALL accepted: only EPSV from now on.")
            }
            Some(a) if a != "1" && a != "2" => {
                reply(522, "Network protocol not supported, use (1,2).")
            }
            _ => Action::Passive { announce: None },
        }
    }

    /// `PORT` and `EPRT`: checked before anything connects.
    pub(super) fn active(&mut self, target: SocketAddr) -> Action {
        if !self.settings.active {
            return reply(
                502,
                "Active mode is disabled on this gateway; use PASV or EPSV.",
            );
        }
        if self.epsv_all {
            return reply(503, "EPSV ALL was sent: only EPSV may be used now.");
        }
        if let Err(why) = check_active(target, self.settings.peer) {
            log::warn!(
                "refused active-mode target {target} from {}: {why}",
                self.settings.peer
            );
            return reply(501, format!("Refused: {why}."));
        }
        Action::Active {
            target,
            reply: Reply::new(200, "Active mode target accepted."),
        }
    }
}
