//! Replies that depend on nothing but the command and the session's settings.

use crate::ftp::listing::MLST_FACTS;
use crate::ftp::proto::reply::quote_path;
use crate::ftp::proto::{Command, Reply, TransferType};
use crate::vfs::VPath;

/// `FEAT`: exactly what works.
pub fn feat(tls_available: bool) -> Reply {
    let mut features: Vec<String> = Vec::new();
    if tls_available {
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

pub fn opts(arg: &str) -> Reply {
    let upper = arg.trim().to_ascii_uppercase();
    if upper == "UTF8 ON" || upper == "UTF-8 ON" {
        Reply::new(200, "UTF-8 is always on.")
    } else if upper.starts_with("MLST") {
        Reply::new(200, format!("MLST facts: {MLST_FACTS}"))
    } else {
        Reply::new(501, format!("OPTS {arg}: option not supported."))
    }
}

pub fn help() -> Reply {
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

pub fn pwd(cwd: &VPath) -> Reply {
    Reply::new(
        257,
        format!("{} is the current directory.", quote_path(cwd.as_str())),
    )
}

pub fn type_set(t: TransferType) -> Reply {
    Reply::new(
        200,
        match t {
            TransferType::Ascii => "Type set to A (bytes are stored exactly as sent).",
            TransferType::Image => "Type set to I.",
        },
    )
}

/// Commands whose answer never changes.
pub fn fixed(cmd: &Command) -> Reply {
    use Command as C;
    match cmd {
        C::Acct => Reply::new(202, "No account is needed on this gateway."),
        C::Ccc => Reply::new(
            533,
            "CCC is refused: the control connection stays as it is.",
        ),
        C::Syst => Reply::new(215, "UNIX Type: L8"),
        C::Noop => Reply::new(200, "OK."),
        C::Mode => Reply::new(200, "Mode set to S."),
        C::Stru => Reply::new(200, "Structure set to F."),
        C::Allo => Reply::new(200, "ALLO noted; space is checked when the upload starts."),
        C::Abor => Reply::new(225, "No transfer to abort."),
        C::Retr => Reply::new(
            550,
            "Downloads are disabled on this gateway: it only accepts uploads.",
        ),
        C::Site => Reply::new(502, "SITE commands are not supported on this gateway."),
        C::Unknown(verb) => Reply::new(502, format!("{verb}: command not implemented.")),
        // Every other command is decided in `Core::handle`.
        _ => Reply::new(502, "Command not implemented."),
    }
}
