//! What every fuzzer shares: a seeded generator, so that a failing run replays exactly, and
//! a time budget, small in CI and raised for long runs.
//!
//! * `WEIR_FUZZ_SECONDS` — how long each fuzzer runs (default: its CI budget, 20–30 s);
//! * `WEIR_FUZZ_SEED` — the seed (default: a fixed one, so CI is deterministic).

use std::time::{Duration, Instant};

/// SplitMix64: tiny, fast and good enough to pick grammar branches and bytes.
pub struct FuzzRng(u64);

impl FuzzRng {
    /// The generator for fuzzer `name`: `WEIR_FUZZ_SEED` or the fixed default, printed so
    /// that a failure can be replayed.
    pub fn for_fuzzer(name: &str) -> Self {
        let seed = std::env::var("WEIR_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5EED_2026);
        println!("  {name}: seed {seed} (replay with WEIR_FUZZ_SEED={seed})");
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    pub fn between(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next_u64() % ((hi - lo) as u64 + 1)) as i64
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64() as u8).collect()
    }
}

/// The deadline of a fuzzer whose CI budget is `ci_seconds`; `WEIR_FUZZ_SECONDS` overrides.
pub fn deadline(ci_seconds: u64) -> Instant {
    let seconds = std::env::var("WEIR_FUZZ_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(ci_seconds);
    Instant::now() + Duration::from_secs(seconds)
}
