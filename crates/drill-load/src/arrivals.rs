//! The open-model schedule: the intended start time of every arrival, from the profile alone.
//!
//! Arrival `k` (from 0) starts when the integral of the rate reaches `k`: at a constant rate
//! `r` that is `k / r`; on a linear ramp it is the root of a quadratic. The schedule never
//! looks at responses, so a slow server cannot slow the load down (no coordinated omission).

use std::time::Duration;

use drill_spec::timeline::TrafficPlan;

#[derive(Debug, Clone, Copy)]
struct Seg {
    start: f64,
    len: f64,
    r0: f64,
    r1: f64,
    /// Arrivals before this segment (the integral so far).
    before: f64,
    count: f64,
}

/// The intended offsets of all arrivals, in order.
#[derive(Debug, Clone)]
pub struct Arrivals {
    segs: Vec<Seg>,
    seg: usize,
    k: u64,
    total: f64,
}

impl Arrivals {
    /// The schedule of a traffic plan (durations already time-scaled).
    pub fn new(plan: &TrafficPlan) -> Self {
        let mut segs = Vec::new();
        let mut before = 0.0;
        for s in &plan.stages {
            let len = (s.end - s.start).as_secs_f64();
            let (r0, r1) = (s.from.per_second(), s.to.per_second());
            let count = (r0 + r1) / 2.0 * len;
            segs.push(Seg {
                start: s.start.as_secs_f64(),
                len,
                r0,
                r1,
                before,
                count,
            });
            before += count;
        }
        Self {
            segs,
            seg: 0,
            k: 0,
            total: before,
        }
    }

    /// A constant rate for a duration.
    pub fn constant(rate: f64, duration: Duration) -> Self {
        let len = duration.as_secs_f64();
        let count = rate * len;
        Self {
            segs: vec![Seg {
                start: 0.0,
                len,
                r0: rate,
                r1: rate,
                before: 0.0,
                count,
            }],
            seg: 0,
            k: 0,
            total: count,
        }
    }

    /// The highest rate of the profile, per second.
    pub fn peak_rate(&self) -> f64 {
        self.segs.iter().map(|s| s.r0.max(s.r1)).fold(0.0, f64::max)
    }

    /// How many arrivals the schedule holds (the integral of the profile, rounded up).
    pub fn total(&self) -> u64 {
        (self.total - 1e-9).ceil().max(0.0) as u64
    }
}

impl Iterator for Arrivals {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let n = self.k as f64;
        if n >= self.total - 1e-9 {
            return None;
        }
        while let Some(s) = self.segs.get(self.seg) {
            if n < s.before + s.count - 1e-9 {
                let local = n - s.before;
                let t = if (s.r1 - s.r0).abs() < 1e-12 {
                    local / s.r0
                } else {
                    // r0 t + (r1 - r0) t^2 / (2 len) = local
                    let a = (s.r1 - s.r0) / (2.0 * s.len);
                    let b = s.r0;
                    let disc = (b * b + 4.0 * a * local).max(0.0);
                    // The numerically stable root of a t^2 + b t - local = 0.
                    if b > 0.0 {
                        2.0 * local / (b + disc.sqrt())
                    } else {
                        (-b + disc.sqrt()) / (2.0 * a)
                    }
                };
                self.k += 1;
                return Some(Duration::from_secs_f64(s.start + t.clamp(0.0, s.len)));
            }
            self.seg += 1;
        }
        None
    }

    /// Skips `n` arrivals without computing them (a shard's or a worker's stride).
    fn nth(&mut self, n: usize) -> Option<Duration> {
        self.k = self.k.saturating_add(n as u64);
        self.next()
    }
}

#[cfg(test)]
mod tests {
    use drill_spec::model::Stage;
    use drill_spec::timeline::traffic;

    use super::*;

    fn stage(
        rate: Option<&str>,
        ramp: Option<&str>,
        over: Option<&str>,
        hold: Option<&str>,
    ) -> Stage {
        Stage {
            rate: rate.map(|r| r.parse().expect("rate")),
            ramp_to: ramp.map(|r| r.parse().expect("rate")),
            over: over.map(|d| d.parse().expect("dur")),
            hold: hold.map(|d| d.parse().expect("dur")),
        }
    }

    #[test]
    fn a_constant_rate_spaces_arrivals_evenly_from_zero() {
        let a: Vec<Duration> = Arrivals::constant(10.0, Duration::from_secs(1)).collect();
        assert_eq!(a.len(), 10);
        assert_eq!(a[0], Duration::ZERO);
        assert!((a[9].as_secs_f64() - 0.9).abs() < 1e-9);
    }

    #[test]
    fn the_seed_profile_schedules_its_integral_and_ramps_smoothly() {
        let plan = traffic(
            &[
                stage(Some("20/s"), None, None, None),
                stage(None, Some("50/s"), Some("2m"), None),
                stage(Some("120/s"), None, None, Some("5m")),
                stage(None, Some("0/s"), Some("2m"), None),
            ],
            1.0,
        );
        let a: Vec<Duration> = Arrivals::new(&plan).collect();
        assert_eq!(a.len(), 47_400);
        assert!(a.windows(2).all(|w| w[0] <= w[1]), "arrivals are in order");
        // Arrivals in the first second of the ramp are near 20/s, in the last near 50/s.
        let first = a.iter().filter(|t| t.as_secs_f64() < 1.0).count();
        let last = a
            .iter()
            .filter(|t| (119.0..120.0).contains(&t.as_secs_f64()))
            .count();
        assert!((20..=21).contains(&first), "{first}");
        assert!((49..=51).contains(&last), "{last}");
        assert!(a.last().expect("last").as_secs_f64() < 540.0);
    }
}
