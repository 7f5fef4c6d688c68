//! Login cost: one argon2id verification at the OWASP minimum (19 MiB, t=2, p=1), and
//! logins per second when the verified-credential cache answers.
//!
//! Run: `cargo bench --bench auth`

use std::sync::Arc;
use std::time::Instant;

use ftpgate::admin::{Request, execute};
use ftpgate::auth::{AuthConfig, Authenticator, hash_password, verify_password};
use ftpgate::store::Store;
use ftpgate::store::pipes::PipeSpec;

fn main() {
    let hash = hash_password("bench-password").unwrap();
    let n = 20;
    let t = Instant::now();
    for _ in 0..n {
        assert!(verify_password(hash.expose(), "bench-password"));
    }
    let per = t.elapsed() / n;
    println!(
        "argon2id verify (m=19456 KiB, t=2, p=1): {:.1} ms each",
        per.as_secs_f64() * 1e3
    );

    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(&dir.path().join("db.redb")).unwrap());
    execute(
        &store,
        Request::SenderAdd {
            name: "cam1".into(),
            password_hash: hash,
            require_tls: false,
            allow: vec![],
        },
    )
    .unwrap();
    let spec = PipeSpec {
        id: Some("line1".into()),
        name: "l".into(),
        dest: "file:///srv/l".into(),
        enabled: true,
        ..Default::default()
    };
    execute(&store, Request::PipeAdd { spec }).unwrap();
    execute(
        &store,
        Request::Grant {
            name: "cam1".into(),
            pipe: "line1".into(),
        },
    )
    .unwrap();
    let auth = Authenticator::new(store, AuthConfig::default());
    let peer = "10.0.0.1".parse().unwrap();
    smol::block_on(async {
        auth.login("cam1", "bench-password", peer, false)
            .await
            .unwrap();
        let n = 20_000;
        let t = Instant::now();
        for _ in 0..n {
            auth.login("cam1", "bench-password", peer, false)
                .await
                .unwrap();
        }
        let secs = t.elapsed().as_secs_f64();
        println!(
            "cached logins (store lookup + HMAC cache hit): {:.0} logins/s ({:.1} µs each)",
            n as f64 / secs,
            secs / n as f64 * 1e6
        );
    });
}
