//! Throttling of failed authentication per client address: after `limit` failures within a
//! window, every request from that address that needs a credential is refused until the
//! window is over (valid credentials included, so guessing cannot go on at a slower pace).
//!
//! Memory is bounded: at most `capacity` addresses are tracked; the oldest windows are
//! forgotten first. IPv6 clients are counted per /64, the block one subscriber usually owns.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// The window failures are counted in.
pub const WINDOW: Duration = Duration::from_secs(60);

/// Most addresses remembered at once.
pub const CAPACITY: usize = 100_000;

/// Failure counts per address.
#[derive(Debug)]
pub struct Throttle {
    limit: u32,
    capacity: usize,
    windows: HashMap<IpAddr, Window>,
    /// Addresses in the order their windows opened (stale entries are skipped).
    order: VecDeque<(IpAddr, Instant)>,
}

#[derive(Clone, Copy, Debug)]
struct Window {
    opened: Instant,
    failures: u32,
}

impl Throttle {
    /// A throttle refusing an address after `limit` failures per [`WINDOW`].
    pub fn new(limit: u32, capacity: usize) -> Self {
        Throttle { limit: limit.max(1), capacity: capacity.max(1), windows: HashMap::new(), order: VecDeque::new() }
    }

    /// Ok when `addr` may try to authenticate at `now`; otherwise how long it must wait.
    pub fn check(&self, addr: IpAddr, now: Instant) -> Result<(), Duration> {
        let Some(w) = self.windows.get(&bucket(addr)) else { return Ok(()) };
        let ends = w.opened + WINDOW;
        if w.failures >= self.limit && now < ends {
            return Err(ends - now);
        }
        Ok(())
    }

    /// Counts one failed authentication from `addr` at `now`.
    pub fn fail(&mut self, addr: IpAddr, now: Instant) {
        let key = bucket(addr);
        match self.windows.get_mut(&key) {
            Some(w) if now < w.opened + WINDOW => w.failures = w.failures.saturating_add(1),
            _ => {
                self.windows.insert(key, Window { opened: now, failures: 1 });
                self.order.push_back((key, now));
            }
        }
        self.evict(now);
    }

    /// Forgets windows that are over, and the oldest ones beyond the capacity.
    fn evict(&mut self, now: Instant) {
        while let Some(&(addr, opened)) = self.order.front() {
            let current = self.windows.get(&addr).is_some_and(|w| w.opened == opened);
            let over = now >= opened + WINDOW;
            if current && !over && self.windows.len() <= self.capacity {
                break;
            }
            self.order.pop_front();
            if current {
                self.windows.remove(&addr);
            }
        }
    }

    /// Addresses currently tracked.
    pub fn tracked(&self) -> usize {
        self.windows.len()
    }
}

/// The unit failures are counted per: the address, or its /64 for IPv6.
fn bucket(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => addr,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn refuses_after_the_limit_until_the_window_ends() {
        let mut t = Throttle::new(3, 10);
        let a = ip("10.0.0.1");
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(t.check(a, t0).is_ok());
            t.fail(a, t0);
        }
        let wait = t.check(a, t0 + Duration::from_secs(10)).unwrap_err();
        assert_eq!(wait, Duration::from_secs(50));
        assert!(t.check(ip("10.0.0.2"), t0).is_ok(), "other addresses are not affected");
        assert!(t.check(a, t0 + WINDOW).is_ok(), "the window ends");
    }

    #[test]
    fn ipv6_counts_per_64() {
        let mut t = Throttle::new(2, 10);
        let now = Instant::now();
        t.fail(ip("2001:db8::1"), now);
        t.fail(ip("2001:db8::ffff:2"), now);
        assert!(t.check(ip("2001:db8::3"), now).is_err());
        assert!(t.check(ip("2001:db8:0:1::3"), now).is_ok());
        t.fail(ip("::ffff:10.0.0.9"), now);
        t.fail(ip("10.0.0.9"), now);
        assert!(t.check(ip("10.0.0.9"), now).is_err(), "v4-mapped is the same client");
    }

    #[test]
    fn memory_is_bounded() {
        let mut t = Throttle::new(2, 100);
        let now = Instant::now();
        for i in 0..10_000u32 {
            t.fail(IpAddr::V4(std::net::Ipv4Addr::from(i)), now);
            assert!(t.tracked() <= 100);
        }
        assert!(t.order.len() <= 101);
        // Windows that ended are forgotten on the next failure.
        t.fail(ip("1.2.3.4"), now + WINDOW);
        assert_eq!(t.tracked(), 1);
    }
}
