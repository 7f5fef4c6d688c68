//! Schema 3 → 4: the JSON catalog keyed by path becomes compact records keyed by
//! directory. Delivered files and empty directories start their retention window at the
//! migration, so nothing a device may still look for disappears on the upgrade.

use super::*;
use crate::store::schema::CATALOG_V3;

impl Writer {
    /// Moves every entry of the version-3 `catalog` into [`ENTRIES`].
    pub(crate) fn move_catalog_v3(&self) -> Result<()> {
        let mut dirs = Vec::new();
        let mut moved = 0u64;
        {
            let old = self.txn.open_table(CATALOG_V3)?;
            for row in old.iter()? {
                let (k, v) = row?;
                let (pipe, path) = k.value();
                let mut e: Entry = decode("catalog", path, v.value())?;
                let path = VPath::from_normalised(path);
                if e.kind == Kind::Dir {
                    dirs.push((pipe.to_string(), path.clone()));
                } else if e.state == Delivery::Delivered {
                    e.kept_since = Some(self.steady_ms);
                }
                self.put_entry(pipe, &path, &e)?;
                moved += 1;
            }
        }
        for (pipe, dir) in dirs {
            let entries = self.txn.open_table(ENTRIES)?;
            if !has_children(&entries, &pipe, dir.as_str())?
                && let Some(mut e) = get_in(&entries, &pipe, &dir)?
            {
                drop(entries);
                e.kept_since = Some(self.steady_ms);
                self.put_entry(&pipe, &dir, &e)?;
            }
        }
        if moved > 0 {
            log::info!("migration: {moved} catalog entries moved to the compact format");
        }
        Ok(())
    }
}

fn get_in(t: &impl read::Table, pipe: &str, path: &VPath) -> Result<Option<Entry>> {
    read::get(t, pipe, path.as_str())
}
