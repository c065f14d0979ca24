//! SplitMix64: the pseudo-random generator behind every generated value of the `nexmark` and
//! `datagen` connectors.
//!
//! Why one counter-based generator: a generated value must be a pure function of the seed,
//! the column and the row (or event) number, so that any row can be produced without
//! producing the rows before it, splits need no shared generator, and a checkpoint records a
//! row count instead of generator state. SplitMix64 makes that cheap: [`mix64`] spreads any
//! combination of seed, column and row into a starting state, and a stream is then one `u64`
//! that advances by an addition. Each connector derives its starting states its own way (`nexmark`
//! in `Config::rng`, `datagen` in `cell_rng`); what a stream produces from a state is
//! defined here, once.
//!
//! The output sequence of a state must never change: it would change every value of every
//! existing seed, and with them benchmark results and recovered sources. The tests below pin
//! it against the reference implementation, and each connector pins its generated rows.

/// The SplitMix64 increment (the golden ratio as a 64-bit fraction).
pub const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// The SplitMix64 finalizer: a bijection on `u64` that spreads every input bit over the output.
#[inline(always)]
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One SplitMix64 stream. Cheap to create: make a fresh one per cell rather than sharing one.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A stream starting from `state` (the first draw is `mix64(state + GOLDEN_GAMMA)`).
    #[inline(always)]
    pub fn new(state: u64) -> Self {
        SplitMix64(state)
    }

    #[inline(always)]
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GOLDEN_GAMMA);
        mix64(self.0)
    }

    /// Uniform in `0..n` by multiply-and-shift, one draw (`n > 0`; 0 gives 0).
    #[inline(always)]
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `[0, 1)`, with the 53 high bits of one draw.
    #[inline(always)]
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `min..=max` from two draws (the modulo bias is below 2^-60 for every range
    /// the connectors draw from).
    pub fn int_between(&mut self, min: i128, max: i128) -> i128 {
        let span = (max - min) as u128 + 1;
        let draw = (u128::from(self.next_u64()) << 64) | u128::from(self.next_u64());
        if span == 0 {
            return draw as i128;
        }
        min + (draw % span) as i128
    }

    /// Uniform in `min..max` (`max` itself only when `min == max`), one draw.
    pub fn float_between(&mut self, min: f64, max: f64) -> f64 {
        min + self.unit() * (max - min)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_reference_splitmix64() {
        // The first outputs of Vigna's splitmix64.c seeded with 1234567.
        let mut r = SplitMix64::new(1_234_567);
        let got: Vec<u64> = (0..5).map(|_| r.next_u64()).collect();
        assert_eq!(
            got,
            [
                6_457_827_717_110_365_317,
                3_203_168_211_198_807_973,
                9_817_491_932_198_370_423,
                4_593_380_528_125_082_431,
                16_408_922_859_458_223_821
            ]
        );
    }

    #[test]
    fn derived_draws_are_pinned() {
        let mut r = SplitMix64::new(42);
        let got =
            (r.below(1000), r.unit().to_bits(), r.int_between(-5, 5), r.float_between(1.5, 2.5).to_bits());
        assert_eq!(got, (741, 4_594_929_399_376_720_760, -5, 4_609_605_491_266_569_346));
    }
}
