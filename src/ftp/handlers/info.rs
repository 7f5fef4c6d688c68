//! FEAT, OPTS, HELP, STAT (server), SIZE, MDTM, MLST (RFC 2389, RFC 3659).

use std::sync::atomic::Ordering;

use crate::ftp::listing::{MLST_FACTS, mlsx_line};
use crate::ftp::proto::Reply;
use crate::ftp::proto::time::format_timeval;
use crate::ftp::session::Session;
use crate::store::View;
use crate::store::catalog::Kind;

impl Session {
    /// Lists exactly what works.
    pub(crate) fn feat(&self) -> Reply {
        let mut features: Vec<String> = Vec::new();
        if self.srv.tls.is_some() {
            features.extend(["AUTH TLS", "PBSZ", "PROT"].map(String::from));
        }
        let mlst = format!("MLST {MLST_FACTS}");
        let always = [
            "EPRT",
            "EPSV",
            "MDTM",
            "MFMT",
            &mlst,
            "PASV",
            "REST STREAM",
            "SIZE",
            "TVFS",
            "UTF8",
        ];
        features.extend(always.iter().map(|f| f.to_string()));
        Reply::multi(211, "Features:", features, "End")
    }

    pub(crate) fn opts(&self, arg: &str) -> Reply {
        let upper = arg.trim().to_ascii_uppercase();
        if upper == "UTF8 ON" || upper == "UTF-8 ON" {
            Reply::new(200, "UTF-8 is always on.")
        } else if upper.starts_with("MLST") {
            Reply::new(200, format!("MLST facts: {MLST_FACTS}"))
        } else {
            Reply::new(501, format!("OPTS {arg}: option not supported."))
        }
    }

    pub(crate) fn help(&self) -> Reply {
        let lines = [
            "USER PASS ACCT QUIT REIN FEAT OPTS SYST NOOP HELP STAT",
            "PWD CWD CDUP XPWD XCWD XCUP LIST NLST MLSD MLST SIZE MDTM",
            "TYPE MODE STRU ALLO REST STOR APPE STOU PASV EPSV PORT EPRT ABOR",
            "MKD RMD DELE RNFR RNTO MFMT XMKD XRMD",
            "RETR is refused: this gateway only accepts uploads.",
        ];
        Reply::multi(
            214,
            "Commands:",
            lines.iter().map(|l| l.to_string()).collect(),
            "End",
        )
    }

    pub(crate) fn status(&self) -> Reply {
        let login = self.login();
        let stats = &self.srv.stats;
        Reply::multi(
            211,
            "ftpgate status:",
            vec![
                format!("Connected from {}", self.peer),
                format!(
                    "Logged in as {} into pipe {} ({})",
                    login.sender.name, login.pipe.id, login.pipe.name
                ),
                format!(
                    "This session: {} uploads, {} bytes",
                    self.uploads, self.bytes
                ),
                format!(
                    "Gateway: {} sessions, {} uploads",
                    stats.sessions.load(Ordering::Relaxed),
                    stats.uploads.load(Ordering::Relaxed)
                ),
            ],
            "End of status",
        )
    }

    pub(crate) async fn size(&self, arg: &str) -> Reply {
        let path = match self.resolve(arg) {
            Ok(p) => p,
            Err(r) => return r,
        };
        let (pipe, p) = (self.login().pipe.id.clone(), path.clone());
        // A partial (what a resuming client asks about) wins over the finished file.
        let found = self
            .srv
            .read(move |r| Ok((r.partial(&pipe, &p)?, r.entry(&pipe, &p)?)))
            .await;
        match found {
            Ok((Some(partial), _)) => Reply::new(213, partial.size.to_string()),
            Ok((None, Some(e))) if e.kind == Kind::File => Reply::new(213, e.size.to_string()),
            Ok((None, Some(_))) => {
                crate::ftp::errors::store(&crate::store::Error::IsADirectory(path.to_string()))
            }
            Ok((None, None)) => {
                crate::ftp::errors::store(&crate::store::Error::NotFound(path.to_string()))
            }
            Err(e) => crate::ftp::errors::store(&e),
        }
    }

    pub(crate) async fn mdtm(&self, arg: &str) -> Reply {
        match self.lookup(arg).await {
            Ok((_, e)) if e.kind == Kind::File => Reply::new(213, format_timeval(e.mtime)),
            Ok((path, _)) => {
                crate::ftp::errors::store(&crate::store::Error::IsADirectory(path.to_string()))
            }
            Err(r) => r,
        }
    }

    pub(crate) async fn mlst(&self, arg: Option<&str>) -> Reply {
        match self.lookup(arg.unwrap_or(".")).await {
            Ok((path, e)) => Reply::multi(
                250,
                format!("Listing {path}"),
                vec![mlsx_line(path.as_str(), &e)],
                "End",
            ),
            Err(r) => r,
        }
    }
}
