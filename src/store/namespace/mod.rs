//! Each Pipe's namespace: the catalog (what a listing shows), the outbox (what the
//! destination still has to be told) and the rules that keep the two in step. Every
//! change is one write transaction that updates both, so a listing and the forwarder
//! never disagree.
//!
//! ## Invariants
//!
//! 1. **Order per key.** An op starts only after every earlier op on the same path, on
//!    one of its ancestors (but an ancestor's `MkDir`: destinations make directories on
//!    the way to a file), or (for `RmDir`) below it, has been delivered or cancelled.
//!    At enqueue each op records the earlier ops it waits for ([`schema::WAITERS`]) and
//!    how many remain; an op whose count is zero, not parked and not in flight is in
//!    [`schema::READY`] under its due time. The forwarder reads that index from the front:
//!    finding work is O(log n) whatever the backlog.
//! 2. **The last op on a key.** [`schema::KEY_OPS`] lists, for every path, its queued
//!    ops in order; the newest is the path's last op. Coalescing only ever rewrites that op, and only a put not in flight:
//!    no op can be waiting for it, so rewriting it reorders nothing. A put that moves to
//!    another path (a rename of an undelivered file) is cancelled and queued again at the
//!    end, behind whatever is already queued on the new path. A put that was tried before
//!    may have reached the destination (a crash can fall between the destination's answer
//!    and our record of it), so cancelling or moving one also deletes its old key there.
//! 3. **Counters, not scans.** Per-Pipe backlog counters ([`outbox::Backlog`]) change in
//!    the same transaction as the ops they count; `status` and metrics read them.
//! 4. **Bodies have one owner.** A spool body belongs to exactly one queued put
//!    ([`schema::BODIES`]) or to one partial upload. A body no record needs goes to
//!    [`schema::GARBAGE`] in the transaction that let go of it, and is deleted from disk
//!    only after that commit, so a crash never deletes a body a record still names.

pub mod catalog;
pub mod outbox;
mod overwrite;

pub use overwrite::Overwrite;

#[cfg(test)]
mod tests;

use super::schema;
