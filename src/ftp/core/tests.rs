//! The session's decisions, without a socket: the login gate, the order of USER and
//! PASS, REST and RNFR lifetimes, AUTH/PBSZ/PROT ordering, the TLS policies, the
//! overwrite and resume rules, data-connection rules and revocation.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::*;
use crate::ftp::proto::{Command, Reply};
use crate::gateway::tls::Policy;
use crate::store::namespace::Overwrite;

fn settings(tls: Policy) -> Settings {
    Settings {
        tls,
        tls_available: tls != Policy::Off,
        active: true,
        passive_address: None,
        local: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
        peer: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7)),
    }
}

fn login_with(overwrite: Overwrite) -> Login {
    let sender = serde_json::from_value(serde_json::json!({
        "name": "cam1", "password_hash": "$argon2id$x", "enabled": true,
    }))
    .unwrap();
    let spec = crate::store::pipes::PipeSpec {
        id: Some("line1".into()),
        name: "Line 1".into(),
        dest: "file:///srv/line1".into(),
        overwrite,
        enabled: true,
        ..Default::default()
    };
    Login {
        sender,
        pipe: spec.build("line1".into(), None, 0).unwrap(),
        key: None,
    }
}

/// A core logged in as cam1 into a Pipe with `overwrite`.
fn logged_in(tls: Policy, overwrite: Overwrite) -> Core {
    let mut c = Core::new(settings(tls));
    if tls == Policy::Required {
        assert_eq!(c.handle(cmd("AUTH TLS")), Action::StartTls);
        c.tls_started();
    }
    c.handle(cmd("USER cam1"));
    assert!(matches!(
        c.handle(cmd("PASS pw")),
        Action::CheckPassword { .. }
    ));
    assert_eq!(c.logged_in(login_with(overwrite)).code, 230);
    c
}

fn cmd(line: &str) -> Command {
    Command::parse(line.as_bytes()).unwrap()
}

/// The code of a plain reply (`0` for any other action).
fn code(a: &Action) -> u16 {
    match a {
        Action::Reply(r) | Action::Close(r) | Action::LoggedOut(r) => r.code,
        _ => 0,
    }
}

fn upload(a: Action) -> Upload {
    match a {
        Action::Upload(u) => u,
        other => panic!("not an upload: {other:?}"),
    }
}

#[test]
fn only_login_tls_and_information_commands_work_before_login() {
    let mut c = Core::new(settings(Policy::Optional));
    for line in [
        "PWD", "CWD /", "STOR x", "APPE x", "LIST", "MKD d", "PASV", "SIZE x", "STAT",
    ] {
        assert_eq!(code(&c.handle(cmd(line))), 530, "{line}");
    }
    for (line, want) in [("FEAT", 211), ("SYST", 215), ("NOOP", 200), ("HELP", 214)] {
        assert_eq!(code(&c.handle(cmd(line))), want, "{line}");
    }
    assert_eq!(
        c.handle(cmd("QUIT")),
        Action::Close(Reply::new(221, "Goodbye."))
    );
}

#[test]
fn user_then_pass_in_that_order_and_three_failures_close() {
    let mut c = Core::new(settings(Policy::Off));
    assert_eq!(code(&c.handle(cmd("PASS pw"))), 503, "PASS before USER");
    assert_eq!(
        code(&c.handle(cmd("USER nobody"))),
        331,
        "every name gets 331"
    );
    match c.handle(cmd("PASS pw")) {
        Action::CheckPassword { user, password } => {
            assert_eq!((user.as_str(), password.expose()), ("nobody", "pw"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(code(&c.handle(cmd("PASS pw"))), 503, "the USER was used up");
    assert_eq!(c.login_failed().1, Flow::Continue);
    assert_eq!(c.login_failed().1, Flow::Continue);
    let (reply, flow) = c.login_failed();
    assert_eq!((reply.code, flow), (530, Flow::Close));

    let mut c = logged_in(Policy::Off, Overwrite::Replace);
    assert_eq!(code(&c.handle(cmd("USER cam1"))), 503);
    assert_eq!(code(&c.handle(cmd("PASS pw"))), 503);
    assert_eq!(code(&c.handle(cmd("PWD"))), 257);
}

#[test]
fn rest_holds_until_the_next_transfer_and_no_further() {
    let mut c = logged_in(Policy::Off, Overwrite::Replace);
    c.handle(cmd("REST 100"));
    for kept in ["TYPE I", "PASV", "NOOP"] {
        assert!(matches!(
            c.handle(cmd(kept)),
            Action::Reply(_) | Action::Passive { .. }
        ));
    }
    assert_eq!(upload(c.handle(cmd("STOR a"))).resume, Resume::At(100));
    assert_eq!(
        upload(c.handle(cmd("STOR a"))).resume,
        Resume::No,
        "used up"
    );

    c.handle(cmd("REST 100"));
    c.handle(cmd("PWD"));
    assert_eq!(
        upload(c.handle(cmd("STOR a"))).resume,
        Resume::No,
        "PWD dropped it"
    );
    c.handle(cmd("REST 0"));
    assert_eq!(upload(c.handle(cmd("STOR a"))).resume, Resume::No);
    assert_eq!(upload(c.handle(cmd("APPE a"))).resume, Resume::End);
}

#[test]
fn rnto_needs_an_rnfr_the_command_right_before() {
    let mut c = logged_in(Policy::Off, Overwrite::Replace);
    assert_eq!(code(&c.handle(cmd("RNTO b"))), 503);
    assert!(matches!(
        c.handle(cmd("RNFR a")),
        Action::Query {
            query: Query::Rnfr,
            ..
        }
    ));
    assert_eq!(
        code(&c.handle(cmd("RNTO b"))),
        503,
        "RNFR of a missing file"
    );
    c.handle(cmd("RNFR a"));
    assert_eq!(c.rename_from(VPath::from_normalised("/a")).code, 350);
    c.handle(cmd("NOOP"));
    assert_eq!(code(&c.handle(cmd("RNTO b"))), 503, "NOOP came in between");
    c.handle(cmd("RNFR a"));
    c.rename_from(VPath::from_normalised("/a"));
    assert_eq!(
        c.handle(cmd("RNTO d/b")),
        Action::Change(Change::Rename {
            from: VPath::from_normalised("/a"),
            to: VPath::from_normalised("/d/b"),
        })
    );
}

#[test]
fn auth_comes_before_pbsz_and_prot_and_only_once() {
    let mut c = Core::new(settings(Policy::Optional));
    assert_eq!(code(&c.handle(cmd("PBSZ 0"))), 503);
    assert_eq!(code(&c.handle(cmd("PROT P"))), 503);
    assert_eq!(code(&c.handle(cmd("AUTH KERBEROS"))), 504);
    assert_eq!(c.handle(cmd("AUTH TLS")), Action::StartTls);
    c.tls_started();
    assert_eq!(code(&c.handle(cmd("AUTH TLS"))), 503, "already TLS");
    assert_eq!(code(&c.handle(cmd("PBSZ 0"))), 200);
    assert_eq!(code(&c.handle(cmd("PROT P"))), 200);
    assert!(c.prot_p());
    assert_eq!(code(&c.handle(cmd("PROT S"))), 536);
    assert_eq!(code(&c.handle(cmd("PROT Q"))), 504);
    assert_eq!(code(&c.handle(cmd("PROT C"))), 200);
    assert!(!c.prot_p());

    let mut off = Core::new(settings(Policy::Off));
    assert_eq!(code(&off.handle(cmd("AUTH TLS"))), 502);
}

#[test]
fn tls_required_refuses_plain_logins_and_clear_transfers() {
    let mut c = Core::new(settings(Policy::Required));
    assert_eq!(code(&c.handle(cmd("USER cam1"))), 530);
    assert_eq!(code(&c.handle(cmd("PASS pw"))), 530);

    let mut c = logged_in(Policy::Required, Overwrite::Replace);
    assert_eq!(code(&c.handle(cmd("PROT C"))), 534);
    assert_eq!(code(&c.handle(cmd("STOR a"))), 521, "PROT P not sent yet");
    assert_eq!(code(&c.handle(cmd("LIST"))), 521);
    c.handle(cmd("PROT P"));
    assert!(matches!(c.handle(cmd("STOR a")), Action::Upload(_)));
    assert!(matches!(c.handle(cmd("LIST")), Action::List { .. }));

    // Optional: clear transfers are fine.
    let mut c = logged_in(Policy::Optional, Overwrite::Replace);
    assert!(matches!(c.handle(cmd("STOR a")), Action::Upload(_)));
}

#[test]
fn the_pipes_overwrite_policy_decides_stor_appe_and_stou() {
    let mut c = logged_in(Policy::Off, Overwrite::Refuse);
    assert_eq!(upload(c.handle(cmd("STOR a"))).policy, Overwrite::Refuse);
    assert_eq!(upload(c.handle(cmd("APPE a"))).policy, Overwrite::Refuse);

    let mut c = logged_in(Policy::Off, Overwrite::KeepBoth);
    assert_eq!(upload(c.handle(cmd("STOR a"))).policy, Overwrite::KeepBoth);
    assert_eq!(
        upload(c.handle(cmd("APPE a"))).policy,
        Overwrite::Replace,
        "appending continues the same file"
    );
    c.entered(VPath::from_normalised("/cam"));
    let u = upload(c.handle(cmd("STOU")));
    assert_eq!((u.kind, u.policy), (UploadKind::Stou, Overwrite::KeepBoth));
    assert!(u.path.as_str().starts_with("/cam/ftpgate-"), "{}", u.path);
    let u = upload(c.handle(cmd("STOU snap.jpg")));
    assert_eq!(u.path.as_str(), "/cam/snap.jpg");
}

#[test]
fn paths_never_leave_the_pipe() {
    let mut c = logged_in(Policy::Off, Overwrite::Replace);
    match c.handle(cmd("CWD ../../../etc")) {
        Action::Query {
            query: Query::Cwd,
            path,
            ..
        } => assert_eq!(path.as_str(), "/etc"),
        other => panic!("{other:?}"),
    }
    assert_eq!(upload(c.handle(cmd("STOR ../../x"))).path.as_str(), "/x");
}

#[test]
fn data_connection_rules() {
    let mut c = logged_in(Policy::Off, Overwrite::Replace);
    let peer = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7)), 2000);
    assert!(
        matches!(c.handle(cmd("PORT 10,0,0,7,7,208")), Action::Active { target, .. } if target == peer)
    );
    assert_eq!(
        code(&c.handle(cmd("PORT 10,0,0,8,7,208"))),
        501,
        "another host"
    );
    assert_eq!(
        c.handle(cmd("PASV")),
        Action::Passive {
            announce: Some(Ipv4Addr::new(10, 0, 0, 1))
        }
    );
    assert_eq!(c.handle(cmd("EPSV")), Action::Passive { announce: None });
    assert_eq!(code(&c.handle(cmd("EPSV ALL"))), 200);
    assert_eq!(code(&c.handle(cmd("PASV"))), 503);
    assert_eq!(code(&c.handle(cmd("PORT 10,0,0,7,7,208"))), 503);

    let mut s = settings(Policy::Off);
    s.active = false;
    s.local = IpAddr::V6(Ipv6Addr::LOCALHOST);
    let mut c = Core::new(s);
    c.logged_in(login_with(Overwrite::Replace));
    assert_eq!(code(&c.handle(cmd("PORT 10,0,0,7,7,208"))), 502);
    assert_eq!(code(&c.handle(cmd("PASV"))), 522, "PASV is IPv4 only");
}

#[test]
fn a_revoked_session_is_closed_and_rein_logs_out_but_keeps_tls() {
    let mut c = logged_in(Policy::Optional, Overwrite::Replace);
    let r = c.revoked(&crate::auth::Refusal::SenderDisabled);
    assert_eq!(r.code, 421);
    assert!(r.lines[0].contains("sender is disabled"), "{:?}", r.lines);
    assert_eq!(code(&c.handle(cmd("PWD"))), 530);

    let mut c = logged_in(Policy::Required, Overwrite::Replace);
    c.refreshed(login_with(Overwrite::Refuse));
    c.handle(cmd("PROT P"));
    assert_eq!(
        upload(c.handle(cmd("STOR a"))).policy,
        Overwrite::Refuse,
        "the new policy"
    );
    assert!(matches!(c.handle(cmd("REIN")), Action::LoggedOut(_)));
    assert!(c.login().is_none() && c.tls());
    assert_eq!(code(&c.handle(cmd("USER cam1"))), 331, "TLS still counts");
}
