//! Password hashes: argon2id at the OWASP minimum (19 MiB, t=2, p=1) with a random
//! salt, verification, the check of a hash brought by `apply`, and generated passwords.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::names::{Invalid, random_token};

/// OWASP minimum for argon2id: 19 MiB of memory, 2 passes, 1 lane.
const M_COST_KIB: u32 = 19 * 1024;
const T_COST: u32 = 2;
const P_COST: u32 = 1;

fn argon2() -> Argon2<'static> {
    let params = Params::new(M_COST_KIB, T_COST, P_COST, None)
        .expect("constant argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes `password` with a fresh random salt into a PHC string (`$argon2id$...`).
pub fn hash_password(password: &str) -> Result<crate::secret::Secret, Invalid> {
    if password.is_empty() {
        return Err(Invalid(
            "empty password: give a password of at least one character".into(),
        ));
    }
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt).expect("the operating system's random source failed");
    let salt = SaltString::encode_b64(&salt).expect("16 bytes is a valid salt length");
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string().into())
        .map_err(|e| Invalid(format!("could not hash the password: {e}")))
}

/// Checks `password` against a PHC hash; a malformed hash verifies nothing. Blocking
/// (tens of milliseconds): call it off the executor.
pub fn verify_password(hash: &str, password: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Checks that `hash` is an argon2id PHC string we can verify (for `apply`).
pub fn check_hash(hash: &str) -> Result<(), Invalid> {
    match PasswordHash::new(hash) {
        Ok(h) if h.algorithm.as_str() == "argon2id" => Ok(()),
        _ => Err(Invalid(
            "password_hash must be an argon2id PHC string ($argon2id$...), as 'ftpgate export' writes".into(),
        )),
    }
}

/// A strong password for `sender add` without `--password-stdin` (about 99 bits).
pub fn generate_password() -> String {
    random_token(20)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify() {
        let h = hash_password("s3cret").unwrap();
        assert!(h.expose().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify_password(h.expose(), "s3cret"));
        assert!(!verify_password(h.expose(), "S3cret"));
        assert!(!verify_password("garbage", "s3cret"));
        assert!(hash_password("").is_err());
        assert!(check_hash(h.expose()).is_ok());
        assert!(check_hash("$2y$10$abc").is_err());
        assert_ne!(h, hash_password("s3cret").unwrap(), "salts differ");
    }
}
