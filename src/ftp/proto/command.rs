//! `Command::parse`: one framed control line to a [`Command`] (pure).
//!
//! The verb is case-insensitive; the argument is everything after the first space, kept
//! as sent (file names may start with spaces). Arguments must be UTF-8 without control
//! characters. Unknown verbs parse to [`Command::Unknown`] so the session can answer
//! `502` with a sentence.

use std::net::SocketAddr;

use super::addr::{AddrError, parse_eprt, parse_port};
use crate::calendar::parse_timeval;

/// Representation type (RFC 959 §3.1.1). Both are stored byte for byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferType {
    Ascii,
    Image,
}

/// A parsed control command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    User(String),
    Pass(crate::secret::Secret),
    Acct,
    Quit,
    Rein,
    Auth(String),
    Pbsz(String),
    Prot(String),
    Ccc,
    Feat,
    Opts(String),
    /// The client's name (`CLNT`, sent by NcFTP, WS_FTP and some cameras).
    Clnt(String),
    Syst,
    Noop,
    Help,
    Stat(Option<String>),
    Size(String),
    Mdtm(String),
    Mlst(Option<String>),
    Pwd,
    Cwd(String),
    Cdup,
    List(Option<String>),
    Nlst(Option<String>),
    Mlsd(Option<String>),
    Type(TransferType),
    Mode,
    Stru,
    Allo,
    Rest(u64),
    Stor(String),
    Appe(String),
    Stou(Option<String>),
    Mkd(String),
    Rmd(String),
    Dele(String),
    Rnfr(String),
    Rnto(String),
    Mfmt {
        mtime: u64,
        path: String,
    },
    Pasv,
    Epsv(Option<String>),
    Port(SocketAddr),
    Eprt(SocketAddr),
    Abor,
    Retr,
    Site,
    Unknown(String),
}

/// Why a line did not parse. Each maps to a `5xx` reply with this sentence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("command line is not valid UTF-8")]
    NotUtf8,
    #[error("control characters are not allowed in commands")]
    ControlChar,
    #[error("empty command line")]
    Empty,
    #[error("{0} needs an argument")]
    MissingArgument(&'static str),
    #[error("{verb}: {why}")]
    BadArgument { verb: &'static str, why: String },
    #[error("{0}")]
    Address(#[from] AddrError),
    /// Understood, but a parameter we do not implement (RFC 959 `504`).
    #[error("{0}")]
    Unsupported(String),
}

impl ParseError {
    /// `501` for syntax errors in arguments, `504` for unimplemented parameters, `500`
    /// for an unreadable line.
    pub fn code(&self) -> u16 {
        match self {
            ParseError::NotUtf8 | ParseError::ControlChar | ParseError::Empty => 500,
            ParseError::Unsupported(_) => 504,
            ParseError::Address(AddrError::UnknownProtocol) => 522,
            _ => 501,
        }
    }
}

fn required(verb: &'static str, arg: Option<&str>) -> Result<String, ParseError> {
    match arg {
        Some(a) if !a.is_empty() => Ok(a.to_string()),
        _ => Err(ParseError::MissingArgument(verb)),
    }
}

/// `LIST -la dir` → `dir`; `LIST -la` → none. Leading `-flags` words are ignored, as many
/// clients send `ls` options.
fn listing_arg(arg: Option<&str>) -> Option<String> {
    let mut rest = arg?.trim_start();
    while rest.starts_with('-') {
        rest = rest.split_once(' ').map_or("", |(_, r)| r).trim_start();
    }
    (!rest.is_empty()).then(|| rest.to_string())
}

fn parse_type(arg: &str) -> Result<TransferType, ParseError> {
    let words: Vec<String> = arg
        .split_whitespace()
        .map(str::to_ascii_uppercase)
        .collect();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    match words[..] {
        ["A"] | ["A", "N"] => Ok(TransferType::Ascii),
        ["I"] | ["L", "8"] => Ok(TransferType::Image),
        [] => Err(ParseError::MissingArgument("TYPE")),
        _ => Err(ParseError::Unsupported(format!(
            "TYPE {arg} is not supported: use A, A N, I or L 8"
        ))),
    }
}

impl Command {
    /// Parses one command line. One arm per verb, so the whole FTP surface reads as one
    /// table (its length is the number of verbs, not logic).
    pub fn parse(line: &[u8]) -> Result<Command, ParseError> {
        let line = std::str::from_utf8(line).map_err(|_| ParseError::NotUtf8)?;
        if line.chars().any(char::is_control) {
            return Err(ParseError::ControlChar);
        }
        let (verb, arg) = match line.split_once(' ') {
            Some((v, a)) => (v, Some(a)),
            None => (line, None),
        };
        if verb.is_empty() {
            return Err(ParseError::Empty);
        }
        let upper = verb.to_ascii_uppercase();
        let opt = || arg.filter(|a| !a.trim().is_empty()).map(str::to_string);
        Ok(match upper.as_str() {
            "USER" => Command::User(required("USER", arg)?),
            // An empty password is a password (anonymous-style clients send one).
            "PASS" => Command::Pass(arg.unwrap_or("").to_string().into()),
            "ACCT" => Command::Acct,
            "QUIT" => Command::Quit,
            "REIN" => Command::Rein,
            "AUTH" => Command::Auth(required("AUTH", arg)?.trim().to_ascii_uppercase()),
            "PBSZ" => Command::Pbsz(required("PBSZ", arg)?.trim().to_string()),
            "PROT" => Command::Prot(required("PROT", arg)?.trim().to_ascii_uppercase()),
            "CCC" => Command::Ccc,
            "FEAT" => Command::Feat,
            "OPTS" => Command::Opts(required("OPTS", arg)?),
            "CLNT" => Command::Clnt(required("CLNT", arg)?),
            "SYST" => Command::Syst,
            "NOOP" => Command::Noop,
            "HELP" => Command::Help,
            "STAT" => Command::Stat(listing_arg(arg)),
            "SIZE" => Command::Size(required("SIZE", arg)?),
            "MDTM" => Command::Mdtm(required("MDTM", arg)?),
            "MLST" => Command::Mlst(opt()),
            "PWD" | "XPWD" => Command::Pwd,
            "CWD" | "XCWD" => Command::Cwd(required("CWD", arg)?),
            "CDUP" | "XCUP" => Command::Cdup,
            "LIST" => Command::List(listing_arg(arg)),
            "NLST" => Command::Nlst(listing_arg(arg)),
            "MLSD" => Command::Mlsd(opt()),
            "TYPE" => Command::Type(parse_type(&required("TYPE", arg)?)?),
            "MODE" => match required("MODE", arg)?.trim().to_ascii_uppercase().as_str() {
                "S" => Command::Mode,
                m => {
                    return Err(ParseError::Unsupported(format!(
                        "MODE {m} is not supported: use MODE S"
                    )));
                }
            },
            "STRU" => match required("STRU", arg)?.trim().to_ascii_uppercase().as_str() {
                "F" => Command::Stru,
                s => {
                    return Err(ParseError::Unsupported(format!(
                        "STRU {s} is not supported: use STRU F"
                    )));
                }
            },
            "ALLO" => Command::Allo,
            "REST" => Command::Rest(required("REST", arg)?.trim().parse().map_err(|_| {
                ParseError::BadArgument {
                    verb: "REST",
                    why: "the marker must be a byte offset (a whole number)".into(),
                }
            })?),
            "STOR" => Command::Stor(required("STOR", arg)?),
            "APPE" => Command::Appe(required("APPE", arg)?),
            "STOU" => Command::Stou(opt()),
            "MKD" | "XMKD" => Command::Mkd(required("MKD", arg)?),
            "RMD" | "XRMD" => Command::Rmd(required("RMD", arg)?),
            "DELE" => Command::Dele(required("DELE", arg)?),
            "RNFR" => Command::Rnfr(required("RNFR", arg)?),
            "RNTO" => Command::Rnto(required("RNTO", arg)?),
            "MFMT" => {
                let a = required("MFMT", arg)?;
                let bad = |why: &str| ParseError::BadArgument {
                    verb: "MFMT",
                    why: why.into(),
                };
                let (time, path) = a
                    .split_once(' ')
                    .ok_or_else(|| bad("use MFMT YYYYMMDDHHMMSS path"))?;
                let mtime = parse_timeval(time)
                    .ok_or_else(|| bad("the time must be YYYYMMDDHHMMSS (UTC)"))?;
                if path.is_empty() {
                    return Err(bad("use MFMT YYYYMMDDHHMMSS path"));
                }
                Command::Mfmt {
                    mtime,
                    path: path.to_string(),
                }
            }
            "PASV" => Command::Pasv,
            "EPSV" => Command::Epsv(opt()),
            "PORT" => Command::Port(parse_port(&required("PORT", arg)?)?),
            "EPRT" => Command::Eprt(parse_eprt(required("EPRT", arg)?.trim())?),
            "ABOR" => Command::Abor,
            "RETR" => Command::Retr,
            "SITE" => Command::Site,
            _ => Command::Unknown(upper.chars().take(16).collect()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Command, ParseError> {
        Command::parse(s.as_bytes())
    }

    #[test]
    fn table() {
        let cases: Vec<(&str, Command)> = vec![
            ("USER cam1", Command::User("cam1".into())),
            ("user cam1@ab12", Command::User("cam1@ab12".into())),
            ("PASS", Command::Pass("".into())),
            ("PASS a b ", Command::Pass("a b ".into())),
            (
                "STOR  lead space.jpg",
                Command::Stor(" lead space.jpg".into()),
            ),
            ("LIST -la", Command::List(None)),
            ("LIST -al /dir", Command::List(Some("/dir".into()))),
            ("NLST", Command::Nlst(None)),
            ("TYPE A N", Command::Type(TransferType::Ascii)),
            ("TYPE L 8", Command::Type(TransferType::Image)),
            ("type i", Command::Type(TransferType::Image)),
            ("XMKD d", Command::Mkd("d".into())),
            ("XPWD", Command::Pwd),
            ("XCUP", Command::Cdup),
            ("REST 100", Command::Rest(100)),
            (
                "MFMT 20261123225338 a.txt",
                Command::Mfmt {
                    mtime: 1_795_474_418,
                    path: "a.txt".into(),
                },
            ),
            (
                "PORT 127,0,0,1,4,1",
                Command::Port("127.0.0.1:1025".parse().unwrap()),
            ),
            (
                "EPRT |2|::1|5000|",
                Command::Eprt("[::1]:5000".parse().unwrap()),
            ),
            ("EPSV ALL", Command::Epsv(Some("ALL".into()))),
            ("ALLO 1000", Command::Allo),
            ("RETR secret", Command::Retr),
            ("SITE CHMOD 777 x", Command::Site),
            ("auth tls", Command::Auth("TLS".into())),
            ("FOO bar", Command::Unknown("FOO".into())),
        ];
        for (line, want) in cases {
            assert_eq!(p(line), Ok(want), "{line}");
        }
    }

    #[test]
    fn errors() {
        assert_eq!(Command::parse(b"STOR \xff"), Err(ParseError::NotUtf8));
        assert_eq!(p("STOR a\0b"), Err(ParseError::ControlChar));
        assert_eq!(p("STOR a\rb"), Err(ParseError::ControlChar));
        assert_eq!(p(""), Err(ParseError::Empty));
        assert_eq!(p("STOR"), Err(ParseError::MissingArgument("STOR")));
        assert_eq!(p("CWD "), Err(ParseError::MissingArgument("CWD")));
        assert_eq!(p("TYPE E").unwrap_err().code(), 504);
        assert_eq!(p("MODE B").unwrap_err().code(), 504);
        assert_eq!(p("REST x").unwrap_err().code(), 501);
        assert_eq!(p("PORT 1,2,3").unwrap_err().code(), 501);
        assert_eq!(p("EPRT |9|x|1|").unwrap_err().code(), 522);
        assert_eq!(p("MFMT 2026 a").unwrap_err().code(), 501);
    }
}
