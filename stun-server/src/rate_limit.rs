//! Per-source token buckets in a fixed-size table: memory is set at start
//! and never grows, however many sources send.
//!
//! The table is 4-way set associative. When a set is full, the entry whose
//! bucket holds the most tokens is replaced: a full bucket carries no
//! information (a new source starts full too), so the sources that are
//! being limited are the last to be forgotten. IPv6 sources are keyed by
//! their /64, since one host can hold a whole /64.

use std::net::IpAddr;

/// Token bucket parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Sustained requests per second per source.
    pub per_second: f64,
    /// Requests a source may send at once after being quiet.
    pub burst: f64,
}

#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    /// 0 means empty.
    key: u64,
    tokens: f32,
    /// Milliseconds since the limiter started.
    stamp: u32,
}

const WAYS: usize = 4;

/// The per-source limiter of one worker.
#[derive(Debug)]
pub struct RateLimiter {
    limit: RateLimit,
    table: Box<[Entry]>,
    set_mask: usize,
    seed: u64,
}

impl RateLimiter {
    /// A table of at least `capacity` entries (rounded up to a power of
    /// two). `seed` randomises placement so sources cannot aim at one set.
    pub fn new(limit: RateLimit, capacity: usize, seed: u64) -> Self {
        let sets = (capacity / WAYS).max(1).next_power_of_two();
        // Every entry is written here, so the table is resident from the
        // start and RSS does not move when sources arrive.
        let table = vec![
            Entry {
                key: 0,
                tokens: 0.0,
                stamp: 0
            };
            sets * WAYS
        ]
        .into_boxed_slice();
        RateLimiter {
            limit,
            table,
            set_mask: sets - 1,
            seed: seed | 1,
        }
    }

    /// Entries in the table.
    pub fn capacity(&self) -> usize {
        self.table.len()
    }

    /// Bytes the table occupies.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.table)
    }

    /// Takes one token for `ip` at `now_ms`; false when the source is over
    /// its limit.
    pub fn allow(&mut self, ip: IpAddr, now_ms: u32) -> bool {
        let key = source_key(ip);
        let h = key.wrapping_mul(self.seed).rotate_left(29) ^ key;
        let h = h.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let set = ((h >> 32) as usize & self.set_mask) * WAYS;
        let rate_per_ms = (self.limit.per_second / 1000.0) as f32;
        let burst = self.limit.burst as f32;
        let slots = &mut self.table[set..set + WAYS];

        let mut victim = 0;
        let mut victim_tokens = f32::MIN;
        for (i, e) in slots.iter_mut().enumerate() {
            if e.key == key {
                let elapsed = now_ms.wrapping_sub(e.stamp) as f32;
                let tokens = (e.tokens + elapsed * rate_per_ms).min(burst);
                e.stamp = now_ms;
                return if tokens >= 1.0 {
                    e.tokens = tokens - 1.0;
                    true
                } else {
                    e.tokens = tokens;
                    false
                };
            }
            let tokens = if e.key == 0 {
                f32::MAX
            } else {
                e.tokens + now_ms.wrapping_sub(e.stamp) as f32 * rate_per_ms
            };
            if tokens > victim_tokens {
                victim_tokens = tokens;
                victim = i;
            }
        }
        slots[victim] = Entry {
            key,
            tokens: burst - 1.0,
            stamp: now_ms,
        };
        burst >= 1.0
    }
}

/// IPv4 addresses whole, IPv6 by /64. Bit 63 marks IPv4: no global IPv6
/// unicast prefix has it set (2000::/3).
fn source_key(ip: IpAddr) -> u64 {
    match ip {
        IpAddr::V4(v4) => (1 << 63) | u32::from(v4) as u64,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => (1 << 63) | u32::from(v4) as u64,
            None => (u128::from(v6) >> 64) as u64 | 1 << 62,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_second: f64, burst: f64, cap: usize) -> RateLimiter {
        RateLimiter::new(RateLimit { per_second, burst }, cap, 0x1234_5678)
    }

    #[test]
    fn burst_then_rate() {
        let mut l = limiter(100.0, 10.0, 1024);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let allowed = (0..50).filter(|_| l.allow(ip, 0)).count();
        assert_eq!(allowed, 10);
        // 100/s = one token per 10 ms.
        assert!(!l.allow(ip, 5));
        assert!(l.allow(ip, 15));
        assert!(!l.allow(ip, 16));
        // A whole second refills to the burst, no more.
        let allowed = (0..50).filter(|_| l.allow(ip, 2000)).count();
        assert_eq!(allowed, 10);
    }

    #[test]
    fn sources_are_independent() {
        let mut l = limiter(10.0, 2.0, 1024);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(l.allow(a, 0) && l.allow(a, 0) && !l.allow(a, 0));
        assert!(l.allow(b, 0));
    }

    #[test]
    fn ipv6_keyed_by_slash_64() {
        let mut l = limiter(10.0, 2.0, 1024);
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2::ffff".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert!(l.allow(a, 0) && l.allow(b, 0) && !l.allow(a, 0));
        assert!(l.allow(c, 0));
    }

    #[test]
    fn limited_source_survives_a_crowd() {
        // A flooding source stays limited while 100k others pass through a
        // table of 1k entries: it is never the one evicted.
        let mut l = limiter(10.0, 5.0, 1024);
        let flood: IpAddr = "198.51.100.9".parse().unwrap();
        while l.allow(flood, 0) {}
        for i in 0..100_000u32 {
            let ip = IpAddr::V4((0x0A00_0000 + i).into());
            assert!(l.allow(ip, 1));
            assert!(!l.allow(flood, 1), "flood source forgotten after {i}");
        }
        assert_eq!(l.capacity(), 1024);
    }
}
