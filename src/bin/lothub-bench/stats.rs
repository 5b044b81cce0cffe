//! Measurement pieces: the latency histogram, per-publisher sequence tracking (lost and
//! duplicated messages), the payload header, and CPU/RSS readings from `/proc`.
//!
//! Nothing here does I/O on sockets; `scenario.rs` feeds these from its tasks.

use std::time::Instant;

/// Bytes at the start of every payload: publisher id (u32), sequence (u64), send time (u64 ns
/// since the bench's epoch). Big-endian, like the rest of MQTT.
pub const HEADER_LEN: usize = 20;

pub fn write_header(out: &mut [u8], publisher: u32, seq: u64, sent_ns: u64) {
    out[0..4].copy_from_slice(&publisher.to_be_bytes());
    out[4..12].copy_from_slice(&seq.to_be_bytes());
    out[12..20].copy_from_slice(&sent_ns.to_be_bytes());
}

pub fn read_header(payload: &[u8]) -> Option<(u32, u64, u64)> {
    if payload.len() < HEADER_LEN {
        return None;
    }
    let publisher = u32::from_be_bytes(payload[0..4].try_into().ok()?);
    let seq = u64::from_be_bytes(payload[4..12].try_into().ok()?);
    let sent = u64::from_be_bytes(payload[12..20].try_into().ok()?);
    Some((publisher, seq, sent))
}

/// Nanoseconds since `epoch`: the clock every task in this process shares.
pub fn now_ns(epoch: Instant) -> u64 {
    epoch.elapsed().as_nanos() as u64
}

/// Log-linear histogram of latencies in microseconds: exact below 64 µs, then 64 buckets per
/// power of two (under 1.6 % error), so millions of samples cost a few KiB.
#[derive(Debug, Clone)]
pub struct Histogram {
    buckets: Vec<u64>,
    count: u64,
    max: u64,
}

const SUB: u64 = 64;
const SUB_BITS: u32 = 6;

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: vec![0; (SUB as usize) * 40],
            count: 0,
            max: 0,
        }
    }
}

impl Histogram {
    fn index(v: u64) -> usize {
        if v < SUB {
            return v as usize;
        }
        let exp = 63 - v.leading_zeros(); // >= SUB_BITS
        let sub = (v >> (exp - SUB_BITS)) & (SUB - 1);
        (SUB + u64::from(exp - SUB_BITS) * SUB + sub) as usize
    }

    /// Smallest value that lands in bucket `i` (reported as the bucket's value).
    fn value(i: usize) -> u64 {
        let i = i as u64;
        if i < SUB {
            return i;
        }
        let exp = (i - SUB) / SUB + u64::from(SUB_BITS);
        let sub = (i - SUB) % SUB;
        (1 << exp) | (sub << (exp - u64::from(SUB_BITS)))
    }

    pub fn record(&mut self, micros: u64) {
        let i = Self::index(micros).min(self.buckets.len() - 1);
        self.buckets[i] += 1;
        self.count += 1;
        self.max = self.max.max(micros);
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a += b;
        }
        self.count += other.count;
        self.max = self.max.max(other.max);
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    /// The value at quantile `q` (0..=1), in microseconds; 0 without samples.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((self.count as f64) * q).ceil().max(1.0) as u64;
        if rank >= self.count {
            return self.max;
        }
        let mut seen = 0;
        for (i, &n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Self::value(i).min(self.max);
            }
        }
        self.max
    }
}

/// Which sequence numbers one subscriber has seen from each publisher.
#[derive(Debug, Default)]
pub struct SeqTracker {
    seen: Vec<Vec<u64>>,
    unique: Vec<u64>,
    pub duplicates: u64,
}

impl SeqTracker {
    /// Records `seq` from `publisher`; false when it was already seen (a duplicate).
    pub fn record(&mut self, publisher: u32, seq: u64) -> bool {
        let p = publisher as usize;
        if p >= self.seen.len() {
            self.seen.resize_with(p + 1, Vec::new);
            self.unique.resize(p + 1, 0);
        }
        let bits = &mut self.seen[p];
        let word = (seq / 64) as usize;
        if word >= bits.len() {
            bits.resize((word + 1).next_power_of_two(), 0);
        }
        let mask = 1u64 << (seq % 64);
        if bits[word] & mask != 0 {
            self.duplicates += 1;
            return false;
        }
        bits[word] |= mask;
        self.unique[p] += 1;
        true
    }

    /// Distinct messages seen from `publisher`.
    pub fn unique_from(&self, publisher: u32) -> u64 {
        self.unique.get(publisher as usize).copied().unwrap_or(0)
    }
}

/// CPU time and resident memory of a process, read from `/proc` (Linux only).
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcSample {
    /// User + system CPU seconds so far.
    pub cpu_s: f64,
    /// VmRSS in KiB.
    pub rss_kib: u64,
}

/// Clock ticks per second for `/proc/*/stat` (sysconf(_SC_CLK_TCK)); 100 on every common Linux.
fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

pub struct ProcReader {
    ticks: f64,
}

impl ProcReader {
    pub fn new() -> ProcReader {
        ProcReader {
            ticks: clock_ticks(),
        }
    }

    /// Reads `/proc/<pid>/stat` (utime + stime) and `/proc/<pid>/status` (VmRSS);
    /// `pid` "self" reads the bench itself. None when the process is gone.
    pub fn sample(&self, pid: &str) -> Option<ProcSample> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name may hold spaces: fields are counted after its closing ')'.
        let rest = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // Fields 14 and 15 of stat (1-based) are at 11 and 12 after the name and state.
        let utime: f64 = fields.get(11)?.parse().ok()?;
        let stime: f64 = fields.get(12)?.parse().ok()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let rss_kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        Some(ProcSample {
            cpu_s: (utime + stime) / self.ticks,
            rss_kib,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_quantiles_are_close() {
        let mut h = Histogram::default();
        for v in 1..=10_000u64 {
            h.record(v);
        }
        let p50 = h.quantile(0.5);
        let p99 = h.quantile(0.99);
        assert!((4_900..=5_000).contains(&p50), "p50 {p50}");
        assert!((9_750..=9_900).contains(&p99), "p99 {p99}");
        assert_eq!(h.max(), 10_000);
        assert_eq!(h.quantile(1.0), 10_000);
        for v in [0, 1, 63, 64, 65, 127, 128, 1000, 123_456_789] {
            let i = Histogram::index(v);
            assert!(Histogram::value(i) <= v, "{v}");
            assert!(Histogram::index(Histogram::value(i)) == i, "{v}");
        }
    }

    #[test]
    fn seq_tracker_counts_duplicates() {
        let mut t = SeqTracker::default();
        assert!(t.record(0, 0));
        assert!(t.record(0, 1000));
        assert!(!t.record(0, 0));
        assert!(t.record(3, 5));
        assert_eq!(t.unique_from(0), 2);
        assert_eq!(t.unique_from(3), 1);
        assert_eq!(t.unique_from(7), 0);
        assert_eq!(t.duplicates, 1);
    }

    #[test]
    fn header_round_trip() {
        let mut buf = [0u8; 32];
        write_header(&mut buf, 7, 99, 123_456);
        assert_eq!(read_header(&buf), Some((7, 99, 123_456)));
        assert_eq!(read_header(&buf[..10]), None);
    }

    #[test]
    fn reads_own_process() {
        let s = ProcReader::new().sample("self").expect("/proc/self");
        assert!(s.rss_kib > 0);
        assert!(s.cpu_s >= 0.0);
    }
}
