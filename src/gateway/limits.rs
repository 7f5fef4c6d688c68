//! Session slots (pure bookkeeping; the server holds one [`Limits`] under a lock).
//!
//! Connections that have not logged in yet and sessions that have are counted apart, so
//! connections that never log in cannot lock out the devices that do:
//!
//! * at most `max_sessions` sessions may be logged in;
//! * at most `max_unauthenticated` connections may be waiting to log in, half of them (at
//!   least one) from one address: the channels of an NVR may all connect in the same
//!   second, while one address alone can never fill the room. When it is full, a
//!   newcomer from an address
//!   that holds fewer of them than the busiest address takes the place of that address's
//!   oldest waiting connection, which is closed: a few addresses that open connections
//!   and never log in cannot keep a device from another address out;
//! * one address may hold at most `max_per_ip` connections of either kind.
//!
//! A connection is admitted as waiting, becomes logged in at `PASS` (refused there when the
//! logged-in sessions are all taken), may wait again after `REIN`, and is released when it
//! ends. Each connection carries a token `T` (the server's: a channel that closes the
//! session); an evicted connection's token is handed back to be dropped.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use super::Refused;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    pub max_sessions: usize,
    pub max_unauthenticated: usize,
    pub max_per_ip: usize,
}

impl Caps {
    /// Most connections one address may have waiting to log in.
    pub fn max_unauthenticated_per_ip(&self) -> usize {
        (self.max_unauthenticated / 2).clamp(1, self.max_per_ip.max(1))
    }
}

/// A connection's handle in [`Limits`].
pub type Id = u64;

#[derive(Debug)]
struct Conn<T> {
    ip: IpAddr,
    logged_in: bool,
    token: T,
}

#[derive(Debug, Default)]
struct PerIp {
    all: usize,
    /// Connections waiting to log in, oldest first.
    waiting: VecDeque<Id>,
}

#[derive(Debug)]
pub struct Limits<T> {
    caps: Caps,
    next_id: Id,
    conns: HashMap<Id, Conn<T>>,
    per_ip: HashMap<IpAddr, PerIp>,
    logged_in: usize,
    waiting: usize,
}

impl<T> Limits<T> {
    pub fn new(caps: Caps) -> Limits<T> {
        Limits {
            caps,
            next_id: 0,
            conns: HashMap::new(),
            per_ip: HashMap::new(),
            logged_in: 0,
            waiting: 0,
        }
    }

    /// Admits a new connection from `ip` as waiting to log in, or says why not. With it
    /// comes, when room had to be made, the token of the connection that gave its place
    /// (drop it to close that connection).
    pub fn admit(&mut self, ip: IpAddr, token: T) -> Result<(Id, Option<T>), Refused> {
        let (all, waiting_here) = self
            .per_ip
            .get(&ip)
            .map_or((0, 0), |p| (p.all, p.waiting.len()));
        if all >= self.caps.max_per_ip {
            return Err(Refused::TooManyFromAddress);
        }
        if waiting_here >= self.caps.max_unauthenticated_per_ip() {
            return Err(Refused::TooManyWaitingFromAddress);
        }
        let mut evicted = None;
        if self.waiting >= self.caps.max_unauthenticated {
            // The busiest address (of equals, the one waiting longest) gives up its oldest
            // waiting connection, if it holds more than the newcomer's would after this.
            let busiest = self
                .per_ip
                .values()
                .filter_map(|p| p.waiting.front().map(|id| (p.waiting.len(), *id)))
                .max_by_key(|(n, oldest)| (*n, std::cmp::Reverse(*oldest)));
            match busiest {
                Some((n, oldest)) if n > waiting_here + 1 => {
                    evicted = self.remove(oldest).map(|c| c.token);
                }
                _ => {
                    return Err(Refused::TooManyWaiting);
                }
            }
        }
        let id = self.next_id;
        self.next_id += 1;
        self.conns.insert(
            id,
            Conn {
                ip,
                logged_in: false,
                token,
            },
        );
        let p = self.per_ip.entry(ip).or_default();
        p.all += 1;
        p.waiting.push_back(id);
        self.waiting += 1;
        Ok((id, evicted))
    }

    /// A waiting connection has logged in: it takes a logged-in slot, or is refused (also
    /// when it was closed to make room meanwhile).
    pub fn promote(&mut self, id: Id) -> Result<(), Refused> {
        let full = self.logged_in >= self.caps.max_sessions;
        let Some(conn) = self.conns.get_mut(&id) else {
            return Err(Refused::MadeRoom);
        };
        if conn.logged_in {
            return Ok(());
        }
        if full {
            return Err(Refused::Full);
        }
        conn.logged_in = true;
        let ip = conn.ip;
        self.logged_in += 1;
        self.waiting -= 1;
        if let Some(p) = self.per_ip.get_mut(&ip) {
            p.waiting.retain(|w| *w != id);
        }
        Ok(())
    }

    /// A logged-in session logs out (`REIN`) and waits to log in again. It keeps its
    /// connection even when the waiting room is full: it had a place.
    pub fn demote(&mut self, id: Id) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        if !conn.logged_in {
            return;
        }
        conn.logged_in = false;
        let ip = conn.ip;
        self.logged_in -= 1;
        self.waiting += 1;
        self.per_ip.entry(ip).or_default().waiting.push_back(id);
    }

    /// A connection ends (nothing to do if it was evicted).
    pub fn release(&mut self, id: Id) {
        self.remove(id);
    }

    fn remove(&mut self, id: Id) -> Option<Conn<T>> {
        let conn = self.conns.remove(&id)?;
        if conn.logged_in {
            self.logged_in -= 1;
        } else {
            self.waiting -= 1;
        }
        if let Some(p) = self.per_ip.get_mut(&conn.ip) {
            p.all -= 1;
            if !conn.logged_in {
                p.waiting.retain(|w| *w != id);
            }
            if p.all == 0 {
                self.per_ip.remove(&conn.ip);
            }
        }
        Some(conn)
    }

    /// (logged in, waiting to log in).
    pub fn counts(&self) -> (usize, usize) {
        (self.logged_in, self.waiting)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    fn limits() -> Limits<u32> {
        Limits::new(Caps {
            max_sessions: 4,
            max_unauthenticated: 16,
            max_per_ip: 32,
        })
    }

    #[test]
    fn a_few_addresses_that_never_log_in_cannot_keep_a_device_out() {
        let mut l = limits();
        // One address may hold eight waiting connections (16 / 2), not nine.
        let first = l.admit(ip(1), 100).unwrap();
        assert_eq!(first.1, None);
        for _ in 1..8 {
            l.admit(ip(1), 101).unwrap();
        }
        assert_eq!(
            l.admit(ip(1), 102).unwrap_err(),
            Refused::TooManyWaitingFromAddress
        );
        // Four more addresses fill the waiting room...
        for a in 2..=5 {
            l.admit(ip(a), 0).unwrap();
            l.admit(ip(a), 0).unwrap();
        }
        assert_eq!(l.counts(), (0, 16));
        // ...a device from another takes the place of the oldest of the busiest address,
        let (device, evicted) = l.admit(ip(20), 7).unwrap();
        assert_eq!(evicted, Some(100));
        assert_eq!(
            l.promote(first.0).unwrap_err(),
            Refused::MadeRoom,
            "the evicted one cannot log in"
        );
        // and logs in.
        l.promote(device).unwrap();
        assert_eq!(l.counts(), (1, 15));
        // When every address holds as many as the newcomer's would, nobody is evicted.
        let mut even: Limits<()> = Limits::new(Caps {
            max_sessions: 4,
            max_unauthenticated: 2,
            max_per_ip: 8,
        });
        even.admit(ip(1), ()).unwrap();
        even.admit(ip(2), ()).unwrap();
        assert_eq!(even.admit(ip(3), ()).unwrap_err(), Refused::TooManyWaiting);
    }

    #[test]
    fn logged_in_sessions_are_capped_at_login() {
        let mut l = limits();
        let mut ids = Vec::new();
        for a in 1..=4 {
            let (id, _) = l.admit(ip(a), 0).unwrap();
            l.promote(id).unwrap();
            ids.push(id);
        }
        let (late, _) = l.admit(ip(5), 0).unwrap();
        assert_eq!(l.promote(late).unwrap_err(), Refused::Full);
        l.release(ids[0]);
        l.promote(late).unwrap();
        assert_eq!(l.counts(), (4, 0));
    }

    #[test]
    fn per_address_cap_counts_both_kinds_and_everything_is_returned() {
        let mut l: Limits<()> = Limits::new(Caps {
            max_sessions: 100,
            max_unauthenticated: 100,
            max_per_ip: 3,
        });
        let ids: Vec<Id> = (0..3)
            .map(|_| {
                let (id, _) = l.admit(ip(1), ()).unwrap();
                l.promote(id).unwrap();
                id
            })
            .collect();
        assert_eq!(l.admit(ip(1), ()).unwrap_err(), Refused::TooManyFromAddress);
        l.demote(ids[0]);
        assert_eq!(l.counts(), (2, 1));
        for id in ids {
            l.release(id);
            l.release(id);
        }
        assert_eq!(l.counts(), (0, 0));
        assert!(
            l.per_ip.is_empty() && l.conns.is_empty(),
            "nothing is remembered after the last session"
        );
    }
}
