//! Multipart uploads the gateway has opened at an S3 destination and not yet completed or
//! aborted, one small fsynced file each under `STATE/multipart/PIPE/`.
//!
//! An upload interrupted while S3 is down cannot be aborted then, and one interrupted by a
//! crash is forgotten by the process: either way its parts stay in the bucket, billed,
//! until someone aborts it. So each upload is written down when S3 gives it an id and
//! crossed out when it completes or is aborted; the forwarder aborts what is left (the
//! uploads no delivery is using) whenever the Pipe answers, until S3 confirms.

use std::collections::HashSet;
use std::fs;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// One open multipart upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Open {
    pub key: String,
    pub upload_id: String,
}

pub struct Journal {
    dir: PathBuf,
    /// Uploads a delivery of this process is using now (never aborted by a sweep).
    active: Mutex<HashSet<String>>,
}

/// The file that records an upload (its id may hold any character; the name may not).
fn file_name(upload_id: &str) -> String {
    use sha2::Digest;
    crate::support::hex(&sha2::Sha256::digest(upload_id.as_bytes())[..16])
}

impl Journal {
    pub fn new(dir: PathBuf) -> Journal {
        Journal {
            dir,
            active: Mutex::new(HashSet::new()),
        }
    }

    fn active(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.active.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes `open` down (durably) and marks it in use until [`Journal::done`].
    pub fn opened(&self, open: &Open) -> io::Result<()> {
        self.active().insert(open.upload_id.clone());
        fs::create_dir_all(&self.dir)?;
        let path = self.dir.join(file_name(&open.upload_id));
        let tmp = path.with_extension("tmp");
        let mut f = fs::File::create(&tmp)?;
        f.write_all(&serde_json::to_vec(open).map_err(io::Error::other)?)?;
        f.sync_all()?;
        fs::rename(&tmp, &path)?;
        fs::File::open(&self.dir)?.sync_all()
    }

    /// The delivery is done with the upload; `closed`: S3 completed or aborted it, so it
    /// is crossed out. Otherwise it stays for [`Journal::leftovers`].
    pub fn done(&self, upload_id: &str, closed: bool) {
        self.active().remove(upload_id);
        if closed {
            self.closed(upload_id);
        }
    }

    /// Crosses out an upload S3 no longer has.
    pub fn closed(&self, upload_id: &str) {
        let _ = fs::remove_file(self.dir.join(file_name(upload_id)));
    }

    /// Uploads still open at S3 that no delivery is using.
    pub fn leftovers(&self) -> Vec<Open> {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let active = self.active().clone();
        entries
            .flatten()
            .filter(|e| e.path().extension().is_none())
            .filter_map(|e| fs::read(e.path()).ok())
            .filter_map(|b| serde_json::from_slice::<Open>(&b).ok())
            .filter(|o| !active.contains(&o.upload_id))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploads_stay_written_down_until_closed_and_in_use_ones_are_never_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::new(dir.path().join("pipe"));
        let a = Open {
            key: "cam/a.bin".into(),
            upload_id: "id/with+odd=chars".into(),
        };
        let b = Open {
            key: "cam/b.bin".into(),
            upload_id: "2".into(),
        };
        j.opened(&a).unwrap();
        j.opened(&b).unwrap();
        assert!(j.leftovers().is_empty(), "both in use");
        j.done(&a.upload_id, false);
        assert_eq!(j.leftovers(), vec![a.clone()], "S3 down: the abort failed");
        // After a crash, a new process finds both.
        let again = Journal::new(dir.path().join("pipe"));
        assert_eq!(again.leftovers().len(), 2);
        again.closed(&a.upload_id);
        j.done(&b.upload_id, true);
        assert!(again.leftovers().is_empty());
    }
}
