//! The changes to Pipes a technician asks for: add (with a fresh id if none is given),
//! set, remove (refused while it holds a backlog, unless discarded), enable and disable.
//! Each runs inside the caller's transaction.

use super::{PipeChanges, Response, done, pipe_view};
use crate::clock::now_secs;
use crate::names::random_token;
use crate::store::pipes::PipeSpec;
use crate::store::{self, Pipe, View, Writer};

pub(super) fn add(w: &Writer, spec: PipeSpec) -> store::Result<Response> {
    let id = match &spec.id {
        Some(id) => {
            crate::names::check_pipe_id(id)?;
            if w.pipe(id)?.is_some() {
                return Err(store::Error::PipeExists(id.clone()));
            }
            id.clone()
        }
        None => unused_pipe_id(w)?,
    };
    let mut pipe = spec.build(id.clone(), None, now_secs())?;
    mark(&mut pipe)?;
    w.put_pipe(&pipe)?;
    Ok(Response::Pipe {
        pipe: pipe_view(&pipe, Vec::new()),
    })
}

/// `pipe set`: the changes given replace the Pipe's settings (an empty CA or proxy
/// clears it); a changed Pipe gets another chance at what it parked.
pub(super) fn set(w: &Writer, id: &str, changes: PipeChanges) -> store::Result<Response> {
    let old = w.existing_pipe(id)?;
    let mut spec = PipeSpec::of(&old, true);
    let c = changes;
    spec.name = c.name.unwrap_or(spec.name);
    spec.endpoint = c.endpoint.or(spec.endpoint);
    spec.region = c.region.or(spec.region);
    spec.path_style = c.path_style.unwrap_or(spec.path_style);
    spec.access_key = c.access_key.or(spec.access_key);
    spec.secret_key = c.secret_key.or(spec.secret_key);
    match c.ca_pem {
        Some(pem) if pem.is_empty() => spec.ca_pem = None,
        Some(pem) => spec.ca_pem = Some(pem),
        None => {}
    }
    match c.proxy {
        Some(url) if url.is_empty() => spec.proxy = None,
        Some(url) => spec.proxy = Some(url),
        None => {}
    }
    spec.overwrite = c.overwrite.unwrap_or(spec.overwrite);
    spec.create_dirs = c.create_dirs.unwrap_or(spec.create_dirs);
    spec.parallel = c.parallel.or(spec.parallel);
    spec.keep_delivered = c.keep_delivered.or(spec.keep_delivered);
    let mut pipe = spec.build(id.to_string(), None, old.created)?;
    pipe.dest_marked = old.dest_marked;
    if c.adopt_destination {
        if pipe.dest.is_s3() {
            return Err(store::Error::Invalid(crate::names::Invalid(format!(
                "--adopt-destination applies only to file:// destinations, and pipe {id} delivers to {}",
                pipe.dest
            ))));
        }
        if !mark(&mut pipe)? {
            return Err(store::Error::Invalid(crate::names::Invalid(format!(
                "{} does not exist: mount the disk (or create the directory) first",
                pipe.dest
            ))));
        }
    }
    w.put_pipe(&pipe)?;
    // A changed Pipe gets another chance at what it parked.
    let retried = w.unpark(None, Some(id), now_secs() * 1000)?;
    done(if retried > 0 {
        format!("updated pipe {id}; {retried} waiting operation(s) will be retried")
    } else {
        format!("updated pipe {id}")
    })
}

/// Removes a Pipe; its backlog only with `discard_backlog` (`Writer::remove_pipe` refuses
/// otherwise), and the reply says what was thrown away.
pub(super) fn remove(w: &Writer, id: &str, discard_backlog: bool) -> store::Result<Response> {
    let b = w.backlog(id)?;
    w.remove_pipe(id, discard_backlog)?;
    done(if b.ops > 0 {
        format!(
            "removed pipe {id} and discarded its {} undelivered file(s), {} byte(s) ({} operation(s))",
            b.puts, b.bytes, b.ops
        )
    } else {
        format!("removed pipe {id}")
    })
}

pub(super) fn enable(w: &Writer, id: &str, enabled: bool) -> store::Result<Response> {
    let mut p = w.existing_pipe(id)?;
    p.enabled = enabled;
    w.put_pipe(&p)?;
    done(format!(
        "{} pipe {id}",
        if enabled { "enabled" } else { "disabled" }
    ))
}

/// Leaves the marker at a `file://` Pipe's root (see `forward::dir`).
fn mark(pipe: &mut Pipe) -> store::Result<bool> {
    crate::forward::dir::mark(pipe).map_err(|e| {
        store::Error::Invalid(crate::names::Invalid(format!(
            "cannot write the destination's marker into {}: {e}",
            pipe.dest
        )))
    })
}

/// A fresh 8-character Pipe id not yet in use.
fn unused_pipe_id(w: &Writer) -> store::Result<String> {
    loop {
        let id = random_token(8);
        if w.pipe(&id)?.is_none() {
            return Ok(id);
        }
    }
}
