//! Password verification for [`Authenticator`]: the verified-credential cache (keys are
//! HMACs under a per-process key), one argon2 check at a time per credentials
//! ([`Turn`]), and the bounded pool those checks run in (see [`crate::auth`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{Authenticator, verify_password};

pub(super) struct Cached {
    /// The hash the password was verified against: a changed password misses.
    hash: String,
    expires: Instant,
}

/// The checks running, by cache key (see [`Turn`]).
pub(super) type Checking = HashMap<[u8; 32], Arc<smol::lock::Mutex<()>>>;

/// A login's place among those checking the same credentials. Its lock is cloned from
/// and dropped into [`Authenticator::checking`] under that map's lock, so the last one to
/// leave (done, or its session gone mid-wait) removes the entry: the map holds only the
/// checks running now.
pub(super) struct Turn<'a> {
    auth: &'a Authenticator,
    key: [u8; 32],
    lock: Arc<smol::lock::Mutex<()>>,
}

impl<'a> Turn<'a> {
    fn take(auth: &'a Authenticator, key: [u8; 32]) -> Turn<'a> {
        let lock = auth.lock_checking().entry(key).or_default().clone();
        Turn { auth, key, lock }
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let mut checking = self.auth.lock_checking();
        drop(std::mem::take(&mut self.lock));
        if checking
            .get(&self.key)
            .is_some_and(|l| Arc::strong_count(l) == 1)
        {
            checking.remove(&self.key);
        }
    }
}

impl Authenticator {
    /// Forgets every verified credential (after any admin change to Senders).
    pub fn clear_cache(&self) {
        self.lock_cache().clear();
    }

    pub(super) fn lock_cache(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Cached>> {
        // A panic while holding this lock cannot leave the map inconsistent.
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn cache_key(&self, name: &str, password: &str) -> [u8; 32] {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.hmac_key).expect("HMAC takes any key length");
        mac.update(name.as_bytes());
        mac.update(&[0]);
        mac.update(password.as_bytes());
        mac.finalize().into_bytes().into()
    }

    pub(super) fn cached(&self, key: &[u8; 32], hash: &str) -> bool {
        self.lock_cache()
            .get(key)
            .is_some_and(|c| c.hash == hash && c.expires > Instant::now())
    }

    pub(super) fn remember(&self, key: [u8; 32], hash: String) {
        let mut cache = self.lock_cache();
        if cache.len() >= self.config.cache_capacity {
            let now = Instant::now();
            cache.retain(|_, c| c.expires > now);
            if cache.len() >= self.config.cache_capacity {
                cache.clear();
            }
        }
        cache.insert(
            key,
            Cached {
                hash,
                expires: Instant::now() + self.config.cache_ttl,
            },
        );
    }

    /// Checks a password against `hash` (or the dummy hash), through the cache and the
    /// bounded pool of verifications.
    pub(super) async fn verify(&self, name: &str, hash: Option<&str>, password: &str) -> bool {
        let key = self.cache_key(name, password);
        if let Some(hash) = hash
            && self.cached(&key, hash)
        {
            return true;
        }
        // One check at a time per credentials: the others wait, then find it cached.
        let turn = Turn::take(self, key);
        let _mine = turn.lock.lock().await;
        match hash {
            Some(hash) if self.cached(&key, hash) => true,
            _ => self.run_argon2(key, hash, password).await,
        }
    }

    pub(super) fn lock_checking(&self) -> std::sync::MutexGuard<'_, Checking> {
        self.checking.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One argon2 verification, in the bounded pool; a match is remembered.
    pub(super) async fn run_argon2(
        &self,
        key: [u8; 32],
        hash: Option<&str>,
        password: &str,
    ) -> bool {
        let _permit = self.permits.acquire().await;
        self.argon2_runs.fetch_add(1, Ordering::Relaxed);
        let against = hash.unwrap_or(self.dummy_hash.expose()).to_string();
        let pw = password.to_string();
        let (ok, against) = smol::unblock(move || (verify_password(&against, &pw), against)).await;
        if ok && hash.is_some() {
            self.remember(key, against);
        }
        ok && hash.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::AuthConfig;
    use crate::store::Store;

    #[test]
    fn the_checks_running_are_forgotten_by_the_last_to_leave_even_one_cancelled() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(&dir.path().join("db.redb")).unwrap());
        let auth = Authenticator::new(store, AuthConfig::default());
        let key = auth.cache_key("cam", "pw");
        let first = Turn::take(&auth, key);
        let second = Turn::take(&auth, key);
        drop(first);
        assert_eq!(auth.lock_checking().len(), 1, "the second still waits");
        drop(second);
        assert!(auth.lock_checking().is_empty());
        // A session that goes while its login waits for argon2.
        let login = auth.login("ghost", "pw", "10.0.0.1".parse().unwrap(), false);
        let mut login = Box::pin(login);
        // Polled until it waits on its check (the look-up of the name comes first).
        for _ in 0..500 {
            assert!(smol::block_on(smol::future::poll_once(&mut login)).is_none());
            if !auth.lock_checking().is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(auth.lock_checking().len(), 1);
        drop(login);
        assert!(auth.lock_checking().is_empty());
    }
}
