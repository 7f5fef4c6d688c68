//! Login resolution against a real store: every reason a login can fail, Pipe scoping,
//! and the verified-credential cache.

use std::net::IpAddr;
use std::sync::Arc;

use ftpgate::admin::{Request, execute};
use ftpgate::auth::{AuthConfig, Authenticator, Refusal, hash_password};
use ftpgate::store::Store;
use ftpgate::store::pipes::PipeSpec;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn setup() -> (tempfile::TempDir, Arc<Store>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("db.redb")).unwrap());
    let add_sender = |name: &str, pw: &str, require_tls: bool, allow: &[&str]| {
        execute(
            &store,
            Request::SenderAdd {
                name: name.into(),
                password_hash: hash_password(pw).unwrap(),
                require_tls,
                allow: allow.iter().map(|s| s.to_string()).collect(),
            },
        )
        .unwrap();
    };
    add_sender("cam1", "cam-pass", false, &[]);
    add_sender("multi", "multi-pass", false, &[]);
    add_sender("lonely", "lonely-pass", false, &[]);
    add_sender("secure", "secure-pass", true, &[]);
    add_sender("fenced", "fenced-pass", false, &["10.1.0.0/16"]);
    for id in ["line1", "line2", "offp"] {
        let spec = PipeSpec {
            id: Some(id.into()),
            name: id.into(),
            dest: format!("file:///srv/{id}"),
            enabled: true,
            ..Default::default()
        };
        execute(&store, Request::PipeAdd { spec }).unwrap();
    }
    execute(
        &store,
        Request::PipeEnable {
            id: "offp".into(),
            enabled: false,
        },
    )
    .unwrap();
    for (s, p) in [
        ("cam1", "line1"),
        ("multi", "line1"),
        ("multi", "line2"),
        ("multi", "offp"),
        ("secure", "line1"),
        ("fenced", "line1"),
    ] {
        execute(
            &store,
            Request::Grant {
                name: s.into(),
                pipe: p.into(),
            },
        )
        .unwrap();
    }
    (dir, store)
}

#[test]
fn every_login_outcome() {
    let (_dir, store) = setup();
    let auth = Authenticator::new(store.clone(), AuthConfig::default());
    let lan = ip("10.1.2.3");
    smol::block_on(async {
        let ok = auth.login("cam1", "cam-pass", lan, false).await.unwrap();
        assert_eq!(
            (ok.sender.name.as_str(), ok.pipe.id.as_str()),
            ("cam1", "line1")
        );
        let ok = auth
            .login("multi@line2", "multi-pass", lan, false)
            .await
            .unwrap();
        assert_eq!(ok.pipe.id, "line2");

        let refused = |user: &'static str, pw: &'static str, peer: IpAddr, tls: bool| {
            let auth = &auth;
            async move { auth.login(user, pw, peer, tls).await.unwrap_err() }
        };
        assert_eq!(
            refused("ghost", "x", lan, false).await,
            Refusal::UnknownSender
        );
        assert_eq!(
            refused("ghost@line1", "x", lan, false).await,
            Refusal::UnknownSender
        );
        assert_eq!(
            refused("cam1", "wrong", lan, false).await,
            Refusal::WrongPassword
        );
        assert_eq!(
            refused("multi", "multi-pass", lan, false).await,
            Refusal::Ambiguous(vec!["line1".into(), "line2".into(), "offp".into()])
        );
        assert_eq!(
            refused("lonely", "lonely-pass", lan, false).await,
            Refusal::NoPipe
        );
        assert_eq!(
            refused("cam1@line2", "cam-pass", lan, false).await,
            Refusal::NotGranted("line2".into())
        );
        assert_eq!(
            refused("cam1@nope", "cam-pass", lan, false).await,
            Refusal::UnknownPipe("nope".into())
        );
        assert_eq!(
            refused("multi@offp", "multi-pass", lan, false).await,
            Refusal::PipeDisabled("offp".into())
        );
        assert_eq!(
            refused("secure", "secure-pass", lan, false).await,
            Refusal::TlsRequired
        );
        assert!(auth.login("secure", "secure-pass", lan, true).await.is_ok());
        assert_eq!(
            refused("fenced", "fenced-pass", ip("10.2.0.1"), false).await,
            Refusal::SourceNotAllowed(ip("10.2.0.1"))
        );
        assert!(
            auth.login("fenced", "fenced-pass", ip("::ffff:10.1.9.9"), false)
                .await
                .is_ok()
        );

        execute(
            &store,
            Request::SenderEnable {
                name: "cam1".into(),
                enabled: false,
            },
        )
        .unwrap();
        assert_eq!(
            refused("cam1", "cam-pass", lan, false).await,
            Refusal::SenderDisabled
        );
        // A wrong password does not reveal that the Sender is disabled.
        assert_eq!(
            refused("cam1", "wrong", lan, false).await,
            Refusal::WrongPassword
        );
    });
}

#[test]
fn the_cache_spares_argon2_and_forgets_a_changed_password() {
    let (_dir, store) = setup();
    let auth = Authenticator::new(store.clone(), AuthConfig::default());
    let lan = ip("10.1.2.3");
    smol::block_on(async {
        auth.login("cam1", "cam-pass", lan, false).await.unwrap();
        let runs = auth.argon2_runs();
        for _ in 0..20 {
            auth.login("cam1", "cam-pass", lan, false).await.unwrap();
        }
        assert_eq!(auth.argon2_runs(), runs, "cached logins run no argon2");

        // Wrong passwords and unknown names always pay a verification (no timing oracle).
        auth.login("cam1", "nope", lan, false).await.unwrap_err();
        auth.login("ghost", "nope", lan, false).await.unwrap_err();
        assert_eq!(auth.argon2_runs(), runs + 2);

        // A new password: the old one no longer logs in, though it was cached.
        execute(
            &store,
            Request::SenderPasswd {
                name: "cam1".into(),
                password_hash: hash_password("fresh").unwrap(),
            },
        )
        .unwrap();
        assert_eq!(
            auth.login("cam1", "cam-pass", lan, false)
                .await
                .unwrap_err(),
            Refusal::WrongPassword
        );
        assert!(auth.login("cam1", "fresh", lan, false).await.is_ok());
    });
}

#[test]
fn an_expired_cache_entry_verifies_again() {
    let (_dir, store) = setup();
    let config = AuthConfig {
        cache_ttl: std::time::Duration::ZERO,
        ..AuthConfig::default()
    };
    let auth = Authenticator::new(store, config);
    smol::block_on(async {
        auth.login("cam1", "cam-pass", ip("10.0.0.1"), false)
            .await
            .unwrap();
        auth.login("cam1", "cam-pass", ip("10.0.0.1"), false)
            .await
            .unwrap();
    });
    assert_eq!(auth.argon2_runs(), 2);
}

/// Forty cameras restarted together log in with the same credentials at once. The first
/// verification fills the cache for all of them: one argon2 run, not one per camera
/// (each costs 19 MiB and tens of milliseconds of CPU; before, every login that came
/// before the first check ended ran its own).
#[test]
fn logins_at_once_with_the_same_credentials_verify_them_once() {
    let (_dir, store) = setup();
    let auth = Authenticator::new(store, AuthConfig::default());
    let lan = ip("10.1.2.3");
    smol::block_on(async {
        let logins: Vec<_> = (0..16)
            .map(|_| auth.login("cam1", "cam-pass", lan, false))
            .collect();
        for login in join_all(logins).await {
            login.unwrap();
        }
    });
    assert_eq!(auth.argon2_runs(), 1);
    // Wrong passwords are never answered from another login's check.
    smol::block_on(async {
        let logins: Vec<_> = (0..4)
            .map(|_| auth.login("cam1", "nope", lan, false))
            .collect();
        for login in join_all(logins).await {
            assert_eq!(login.unwrap_err(), Refusal::WrongPassword);
        }
    });
    assert_eq!(auth.argon2_runs(), 5);
}

/// Polls every future until all are done (the executor runs them interleaved).
async fn join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let ex = smol::LocalExecutor::new();
    let tasks: Vec<_> = futures.into_iter().map(|f| ex.spawn(f)).collect();
    ex.run(async {
        let mut out = Vec::with_capacity(tasks.len());
        for t in tasks {
            out.push(t.await);
        }
        out
    })
    .await
}
