//! Hand-picked orders of events the model test found or that must never regress: a
//! rename over a file during an outage, uploads into a new directory, an upload behind
//! the delete of a file in its directory's place.

use super::*;

#[test]
fn the_rename_over_a_file_during_an_outage_keeps_the_renamed_bytes() {
    // A camera's replace-a-snapshot sequence (upload under a temporary name, rename over
    // the snapshot) during an outage, step by step.
    let mut w = World::new(1);
    let s = &w.store;
    s.write(|w| w.publish("pipa", &v("/x.jpg"), Overwrite::Replace, false, up("b1"), 0))
        .unwrap();
    let first = s.write(|w| w.claim_ready("pipa", 0, 10)).unwrap();
    s.write(|w| w.settle(&[(first[0].id, Outcome::Done)]))
        .unwrap();
    s.write(|w| w.publish("pipa", &v("/x.jpg"), Overwrite::Replace, false, up("b2"), 0))
        .unwrap();
    s.write(|w| w.publish("pipa", &v("/x.tmp"), Overwrite::Replace, false, up("b3"), 0))
        .unwrap();
    s.write(|w| w.rename("pipa", &v("/x.tmp"), &v("/x.jpg"), 0))
        .unwrap();
    w.dest
        .get_mut("pipa")
        .unwrap()
        .ns
        .files
        .insert("/x.jpg".into(), "b1".into());
    w.model
        .get_mut("pipa")
        .unwrap()
        .files
        .insert("/x.jpg".into(), "b3".into());
    w.drain();
    w.check();
    assert_eq!(w.dest["pipa"].ns.files["/x.jpg"], "b3");
}

/// A month offline, a camera makes a directory a day and uploads into it: delivering the
/// marker must not have to wake every upload queued under it (a million at once, in one
/// transaction, stalled the drain for seconds). Uploads depend on what was deleted or
/// renamed above them, never on a directory's creation: destinations make directories
/// on the way to a file.
#[test]
fn uploads_into_a_new_directory_do_not_wait_for_its_marker() {
    let w = World::new(1);
    let s = &w.store;
    s.write(|w| w.mkdir("pipa", &v("/day"), 0)).unwrap();
    for f in ["/day/a.jpg", "/day/b.jpg"] {
        s.write(|w| w.publish("pipa", &v(f), Overwrite::Replace, false, up(f), 0))
            .unwrap();
    }
    let claimed = s.write(|w| w.claim_ready("pipa", 0, 10)).unwrap();
    assert_eq!(claimed.len(), 3, "{claimed:?}");
}

/// What an upload does wait for: the delete of a file where its directory now is.
#[test]
fn an_upload_still_waits_for_the_delete_of_a_file_in_its_directorys_place() {
    let w = World::new(1);
    let s = &w.store;
    s.write(|w| w.publish("pipa", &v("/d"), Overwrite::Replace, false, up("b1"), 0))
        .unwrap();
    let first = s.write(|w| w.claim_ready("pipa", 0, 10)).unwrap();
    s.write(|w| w.settle(&[(first[0].id, Outcome::Done)]))
        .unwrap();
    s.write(|w| w.delete("pipa", &v("/d"), 0)).unwrap();
    s.write(|w| w.mkdir("pipa", &v("/d"), 0)).unwrap();
    s.write(|w| w.publish("pipa", &v("/d/x"), Overwrite::Replace, false, up("b2"), 0))
        .unwrap();
    let claimed = s.write(|w| w.claim_ready("pipa", 0, 10)).unwrap();
    let names: Vec<&str> = claimed.iter().map(|op| op.action.name()).collect();
    assert_eq!(names, ["delete"], "{claimed:?}");
}
