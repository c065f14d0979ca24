//! The `nexmark` connector: a columnar generator of the Nexmark benchmark's events.
//!
//! Why: Nexmark (persons selling items in auctions, and bids on them) is the usual
//! benchmark of streaming SQL engines; queries q0..q22 read three sources, `person`,
//! `auction` and `bid`. To measure the engine rather than the input, the generator has to
//! be much faster than any query, and it has to be reproducible.
//!
//! How: the Nexmark event sequence is numbered 0, 1, 2, ...; out of every 50 consecutive
//! event numbers, 1 is a person, 3 are auctions and 46 are bids (by `number % 50`). Every
//! value of an event is a pure function of `(seed, event number, column)`: each column of a
//! row draws from its own small counter-based PRNG (splitmix64) keyed by those three. So
//!
//! * a table's rows do not depend on how the sequence is cut into splits or batches, nor on
//!   which other columns are declared: split `i` of `N` takes event numbers `i, i+N, ...`
//!   and keeps those of its table type; all splits together are exactly one split's rows;
//! * generation is columnar: for a batch, the reader lists the event numbers of its rows,
//!   then fills each declared column in one tight loop straight into Arrow buffers.
//!   Undeclared columns cost nothing. Strings are never allocated per row: names, cities,
//!   states, channels and urls come from small precomputed pools, and the random text of
//!   `item_name`, `description`, `email_address` and `extra` is a random slice of a
//!   precomputed 64 KiB block of random text.
//!
//! The value rules follow the standard generator (Apache Beam's Nexmark, with the
//! `channel`/`url` of nexmark-flink): ids start at 1000, a bid's auction is one of the
//! last 100 auctions (or up to 10 not yet created), half the bids go to the current "hot"
//! auction, 3/4 of bidders and sellers are hot persons, prices are `round(10^(u*6) * 100)`,
//! auctions expire within twice the time 1666 events take, `extra` pads events to the
//! standard average sizes (person 200, auction 500, bid 100 bytes), etc. The exact values
//! differ from other implementations (different PRNG), the distributions do not.
//!
//! Event times are `base_time + event_number * gap`. By default the generator runs as fast
//! as it is read; with `nexmark.use.real.time` a reader does not return an event before
//! `(event_number - first_event_number) * gap` has passed since its first read.
//!
//! A reader's offset is `{"events": k}`: the number of rows of its table type the split has
//! returned; the row with index `k` of a split maps to its event number in O(1).

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{
    ArrayRef, Int64Array, RecordBatch, RecordBatchOptions, StringArray, TimestampMicrosecondArray,
};
use arrow::buffer::{Buffer, OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{DataType, SchemaRef, TimeUnit};

use super::options::{check_known_options, invalid_value_got, parse_bool, parse_in_range, BoolWords};
use super::prng::{mix64, SplitMix64};
use super::type_names::sql_type_name;
use super::{Connector, ConnectorOptions, OptionError, ReadOutcome, SplitReader, DEFAULT_BATCH_ROWS};
use crate::error::{ExecError, ExecResult};

const CONNECTOR: &str = "nexmark";

const OPT_TABLE_TYPE: &str = "nexmark.table.type";
const OPT_EVENT_NUM: &str = "nexmark.event.num";
const OPT_SPLIT_NUM: &str = "nexmark.split.num";
const OPT_GAP: &str = "nexmark.min.event.gap.in.ns";
const OPT_CHUNK: &str = "nexmark.max.chunk.size";
const OPT_BASE_TIME: &str = "nexmark.base.time";
const OPT_REAL_TIME: &str = "nexmark.use.real.time";
const OPT_SEED: &str = "nexmark.seed";

const KNOWN_OPTIONS: &[&str] = &[
    OPT_TABLE_TYPE,
    OPT_EVENT_NUM,
    OPT_SPLIT_NUM,
    OPT_GAP,
    OPT_CHUNK,
    OPT_BASE_TIME,
    OPT_REAL_TIME,
    OPT_SEED,
];

/// 2015-07-15 00:00:00 UTC, the standard generator's base time, in milliseconds.
const DEFAULT_BASE_TIME_MS: i64 = 1_436_918_400_000;
const DEFAULT_GAP_NS: u64 = 100_000;
const DEFAULT_SEED: u64 = 0x4e45_584d_4152_4b21;
const MAX_SPLITS: u64 = 1024;
const MAX_CHUNK: u64 = 1 << 20;
const MAX_GAP_NS: u64 = 3_600_000_000_000;
/// Offsets beyond this are not something `offset()` returned (and would overflow).
const MAX_OFFSET_EVENTS: u64 = 1 << 52;

// The standard generator's constants.
const PROPORTION_DENOMINATOR: u64 = 50;
const PERSON_PROPORTION: u64 = 1;
const AUCTION_PROPORTION: u64 = 3;
const FIRST_PERSON_ID: i64 = 1000;
const FIRST_AUCTION_ID: i64 = 1000;
const FIRST_CATEGORY_ID: i64 = 10;
const NUM_CATEGORIES: u64 = 5;
const NUM_ACTIVE_PEOPLE: i64 = 1000;
const NUM_IN_FLIGHT_AUCTIONS: i64 = 100;
const PERSON_ID_LEAD: i64 = 10;
const AUCTION_ID_LEAD: i64 = 10;
/// 1 in `ratio` picks a random id, the others pick the hot one.
const HOT_AUCTION_RATIO: u64 = 2;
const HOT_SELLER_RATIO: u64 = 4;
const HOT_BIDDER_RATIO: u64 = 4;
const HOT_CHANNEL_RATIO: u64 = 2;
/// Hot ids are the first (sellers) or second (bidders) of the latest group of this many.
const HOT_GROUP: i64 = 100;
const AVG_PERSON_BYTES: u64 = 200;
const AVG_AUCTION_BYTES: u64 = 500;
const AVG_BID_BYTES: u64 = 100;
const NUM_CHANNELS: u64 = 10_000;
const HOT_CHANNELS: [&str; 4] = ["Google", "Facebook", "Baidu", "Apple"];
const FIRST_NAMES: [&str; 11] =
    ["Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter", "Walter"];
const LAST_NAMES: [&str; 9] =
    ["Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris"];
const US_CITIES: [&str; 10] = [
    "Phoenix",
    "Los Angeles",
    "San Francisco",
    "Boise",
    "Portland",
    "Bend",
    "Redmond",
    "Seattle",
    "Kent",
    "Cheyenne",
];
const US_STATES: [&str; 6] = ["AZ", "CA", "ID", "OR", "WA", "WY"];

/// Random text is cut from a block of this many bytes (plus room for the longest string).
const TEXT_POOL: u64 = 1 << 16;
const MAX_TEXT: usize = 1024;

/// Spaces the PRNG states of consecutive event numbers of one column.
const EVENT_STRIDE: u64 = 0xd1b5_4a32_d192_ed03;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TableType {
    Person,
    Auction,
    Bid,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    BigInt,
    Varchar,
    Timestamp,
}

impl Kind {
    fn data_type(self) -> DataType {
        match self {
            Kind::BigInt => DataType::Int64,
            Kind::Varchar => DataType::Utf8,
            Kind::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
        }
    }

    /// The SQL name, in upper case as the nexmark documentation lists columns.
    fn sql(self) -> String {
        sql_type_name(&self.data_type()).to_ascii_uppercase()
    }
}

/// A generated column; the discriminant also names its PRNG stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Col {
    PersonId,
    Name,
    Email,
    CreditCard,
    City,
    State,
    AuctionId,
    ItemName,
    Description,
    InitialBid,
    Reserve,
    Expires,
    Seller,
    Category,
    BidAuction,
    Bidder,
    Price,
    Channel,
    Url,
    DateTime,
    Extra,
}

const NUM_STREAMS: usize = Col::Extra as usize + 2;
/// The PRNG stream of the shared text and channel pools.
const POOL_STREAM: usize = NUM_STREAMS - 1;

const PERSON_COLUMNS: &[(&str, Col, Kind)] = &[
    ("id", Col::PersonId, Kind::BigInt),
    ("name", Col::Name, Kind::Varchar),
    ("email_address", Col::Email, Kind::Varchar),
    ("credit_card", Col::CreditCard, Kind::Varchar),
    ("city", Col::City, Kind::Varchar),
    ("state", Col::State, Kind::Varchar),
    ("date_time", Col::DateTime, Kind::Timestamp),
    ("extra", Col::Extra, Kind::Varchar),
];

const AUCTION_COLUMNS: &[(&str, Col, Kind)] = &[
    ("id", Col::AuctionId, Kind::BigInt),
    ("item_name", Col::ItemName, Kind::Varchar),
    ("description", Col::Description, Kind::Varchar),
    ("initial_bid", Col::InitialBid, Kind::BigInt),
    ("reserve", Col::Reserve, Kind::BigInt),
    ("date_time", Col::DateTime, Kind::Timestamp),
    ("expires", Col::Expires, Kind::Timestamp),
    ("seller", Col::Seller, Kind::BigInt),
    ("category", Col::Category, Kind::BigInt),
    ("extra", Col::Extra, Kind::Varchar),
];

const BID_COLUMNS: &[(&str, Col, Kind)] = &[
    ("auction", Col::BidAuction, Kind::BigInt),
    ("bidder", Col::Bidder, Kind::BigInt),
    ("price", Col::Price, Kind::BigInt),
    ("channel", Col::Channel, Kind::Varchar),
    ("url", Col::Url, Kind::Varchar),
    ("date_time", Col::DateTime, Kind::Timestamp),
    ("extra", Col::Extra, Kind::Varchar),
];

impl TableType {
    fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "person" => Some(TableType::Person),
            "auction" => Some(TableType::Auction),
            "bid" => Some(TableType::Bid),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            TableType::Person => "Person",
            TableType::Auction => "Auction",
            TableType::Bid => "Bid",
        }
    }

    fn columns(self) -> &'static [(&'static str, Col, Kind)] {
        match self {
            TableType::Person => PERSON_COLUMNS,
            TableType::Auction => AUCTION_COLUMNS,
            TableType::Bid => BID_COLUMNS,
        }
    }

    fn columns_text(self) -> String {
        self.columns()
            .iter()
            .map(|(name, _, kind)| format!("{name} {}", kind.sql()))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Whether event number `n` is an event of this type.
    fn owns(self, n: u64) -> bool {
        let rem = n % PROPORTION_DENOMINATOR;
        match self {
            TableType::Person => rem < PERSON_PROPORTION,
            TableType::Auction => (PERSON_PROPORTION..PERSON_PROPORTION + AUCTION_PROPORTION).contains(&rem),
            TableType::Bid => rem >= PERSON_PROPORTION + AUCTION_PROPORTION,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Randomness: one SplitMix64 stream per (seed, column, event number), see `Config::rng`.

/// `round(10^(u*6) * 100)`: prices from 1.00 to 1,000,000.00, log-uniform, in cents.
#[inline(always)]
fn next_price(r: &mut SplitMix64) -> i64 {
    ((r.unit() * (6.0 * std::f64::consts::LN_10)).exp() * 100.0).round() as i64
}

/// Length of the `extra` padding bringing an event of `current` bytes to `avg` on average
/// (the desired size +- 20%).
#[inline(always)]
fn extra_len(r: &mut SplitMix64, current: u64, avg: u64) -> usize {
    if current > avg {
        return 0;
    }
    let desired = avg - current;
    let delta = (desired * 2 + 5) / 10;
    let min = desired - delta;
    let len = if delta == 0 { min } else { min + r.below(2 * delta) };
    (len as usize).min(MAX_TEXT)
}

// ---------------------------------------------------------------------------------------
// Id rules of the standard generator.

/// The id (base 0) of the last person created at or before event `n`: one person opens
/// every period of 50 events (`PERSON_PROPORTION` is 1).
#[inline(always)]
fn last_base0_person_id(n: u64) -> i64 {
    (n / PROPORTION_DENOMINATOR) as i64
}

/// The id (base 0) of the last auction created at or before event `n` (-1 before any).
#[inline(always)]
fn last_base0_auction_id(n: u64) -> i64 {
    let mut epoch = (n / PROPORTION_DENOMINATOR) as i64;
    let mut offset = (n % PROPORTION_DENOMINATOR) as i64;
    if offset < PERSON_PROPORTION as i64 {
        epoch -= 1;
        offset = AUCTION_PROPORTION as i64 - 1;
    } else if offset >= (PERSON_PROPORTION + AUCTION_PROPORTION) as i64 {
        offset = AUCTION_PROPORTION as i64 - 1;
    } else {
        offset -= PERSON_PROPORTION as i64;
    }
    epoch * AUCTION_PROPORTION as i64 + offset
}

/// A random recently active person (or one of the next few to be created).
#[inline(always)]
fn next_base0_person_id(n: u64, r: &mut SplitMix64) -> i64 {
    let num_people = last_base0_person_id(n) + 1;
    let active = num_people.min(NUM_ACTIVE_PEOPLE);
    let pick = r.below((active + PERSON_ID_LEAD) as u64) as i64;
    num_people - active + pick
}

/// A random in-flight auction (or one of the next few to be created).
#[inline(always)]
fn next_base0_auction_id(n: u64, r: &mut SplitMix64) -> i64 {
    let max = last_base0_auction_id(n).max(0);
    let min = (max - NUM_IN_FLIGHT_AUCTIONS).max(0);
    min + r.below((max - min + 1 + AUCTION_ID_LEAD) as u64) as i64
}

// ---------------------------------------------------------------------------------------
// Precomputed string pools.

/// Strings stored back to back; `get(i)` is the i-th.
#[derive(Default)]
struct StrPool {
    bytes: Vec<u8>,
    offsets: Vec<usize>,
}

impl StrPool {
    fn new() -> Self {
        StrPool { bytes: Vec::new(), offsets: vec![0] }
    }

    fn push(&mut self, s: &[u8]) {
        self.bytes.extend_from_slice(s);
        self.offsets.push(self.bytes.len());
    }

    fn of(strings: &[&str]) -> Self {
        let mut pool = StrPool::new();
        for s in strings {
            pool.push(s.as_bytes());
        }
        pool
    }

    fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    #[inline(always)]
    fn get(&self, i: usize) -> &[u8] {
        match (self.offsets.get(i), self.offsets.get(i + 1)) {
            (Some(&start), Some(&end)) => &self.bytes[start..end],
            _ => &[],
        }
    }
}

struct Pools {
    /// Lower-case letters with about 1 in 13 a space (the standard `nextString` alphabet).
    text: Vec<u8>,
    /// Lower-case letters only (emails, urls).
    letters: Vec<u8>,
    /// Every "first last" name.
    names: StrPool,
    cities: StrPool,
    states: StrPool,
    /// The 4 hot channels, then `channel-0` ... `channel-9999` (only built for `Bid` tables
    /// reading `channel` or `url`).
    channels: StrPool,
    urls: StrPool,
}

impl Pools {
    fn new(seed: u64, with_channels: bool) -> Self {
        let mut r = SplitMix64::new(stream_key(seed, POOL_STREAM));
        let size = TEXT_POOL as usize + MAX_TEXT;
        let text =
            (0..size).map(|_| if r.below(13) == 0 { b' ' } else { b'a' + r.below(26) as u8 }).collect();
        let letters = (0..size).map(|_| b'a' + r.below(26) as u8).collect();
        let mut names = StrPool::new();
        for first in FIRST_NAMES {
            for last in LAST_NAMES {
                names.push(format!("{first} {last}").as_bytes());
            }
        }
        let mut pools = Pools {
            text,
            letters,
            names,
            cities: StrPool::of(&US_CITIES),
            states: StrPool::of(&US_STATES),
            channels: StrPool::new(),
            urls: StrPool::new(),
        };
        if with_channels {
            for channel in HOT_CHANNELS {
                pools.channels.push(channel.as_bytes());
                let url = pools.base_url(&mut r);
                pools.urls.push(url.as_bytes());
            }
            for k in 0..NUM_CHANNELS {
                pools.channels.push(format!("channel-{k}").as_bytes());
                let mut url = pools.base_url(&mut r);
                if r.below(10) > 0 {
                    url.push_str(&format!("&channel_id={}", (k as u32).reverse_bits()));
                }
                pools.urls.push(url.as_bytes());
            }
        }
        pools
    }

    fn base_url(&self, r: &mut SplitMix64) -> String {
        let mut url = String::from("https://www.nexmark.com/");
        for _ in 0..3 {
            let len = 3 + r.below(2) as usize;
            url.extend(self.letter_slice(r, len).iter().map(|&b| b as char));
            url.push('/');
        }
        url.push_str("item.htm?query=1");
        url
    }

    /// `len` random characters of the text alphabet.
    #[inline(always)]
    fn text_slice(&self, r: &mut SplitMix64, len: usize) -> &[u8] {
        let start = r.below(TEXT_POOL) as usize;
        self.text.get(start..start + len.min(MAX_TEXT)).unwrap_or_default()
    }

    #[inline(always)]
    fn letter_slice(&self, r: &mut SplitMix64, len: usize) -> &[u8] {
        let start = r.below(TEXT_POOL) as usize;
        self.letters.get(start..start + len.min(MAX_TEXT)).unwrap_or_default()
    }
}

fn stream_key(seed: u64, stream: usize) -> u64 {
    mix64(mix64(seed ^ 0x6e65_786d_6172_6b00) ^ (stream as u64 + 1).wrapping_mul(0xa076_1d64_78bd_642f))
}

// ---------------------------------------------------------------------------------------
// Configuration.

struct Config {
    table: TableType,
    schema: SchemaRef,
    /// The generated column of each declared field, in declared order.
    columns: Vec<Col>,
    event_num: Option<u64>,
    splits: u64,
    gap_ns: u64,
    chunk: usize,
    base_us: i64,
    real_time: bool,
    keys: [u64; NUM_STREAMS],
    pools: Pools,
}

fn parse_u64(options: &ConnectorOptions, key: &str, min: u64, max: u64) -> Result<Option<u64>, OptionError> {
    let Some(raw) = options.get(key) else { return Ok(None) };
    match parse_in_range(&raw.trim().replace('_', ""), min..=max) {
        Some(v) => Ok(Some(v)),
        None => Err(invalid_value_got(key, &format!("an integer from {min} to {max}"), raw)),
    }
}

fn parse_flag(options: &ConnectorOptions, key: &str) -> Result<bool, OptionError> {
    let Some(raw) = options.get(key) else { return Ok(false) };
    parse_bool(raw, BoolWords::Lenient).ok_or_else(|| invalid_value_got(key, "'true' or 'false'", raw))
}

/// `YYYY-MM-DD HH:MM:SS` (UTC), `YYYY-MM-DD`, or integer milliseconds since the epoch.
fn parse_base_time(raw: &str) -> Result<i64, OptionError> {
    let err = || {
        invalid_value_got(
            OPT_BASE_TIME,
            "a UTC time 'YYYY-MM-DD HH:MM:SS' or an integer number of milliseconds since 1970-01-01",
            raw,
        )
    };
    let s = raw.trim();
    if let Ok(ms) = s.parse::<i64>() {
        return if ms.checked_mul(1000).is_some() { Ok(ms) } else { Err(err()) };
    }
    let b = s.as_bytes();
    let date_only = b.len() == 10;
    if !(date_only || b.len() == 19) {
        return Err(err());
    }
    let field = |start: usize, len: usize| -> Option<i64> {
        let part = s.get(start..start + len)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    let seps_ok = b[4] == b'-'
        && b[7] == b'-'
        && (date_only || ((b[10] == b' ' || b[10] == b'T') && b[13] == b':' && b[16] == b':'));
    if !seps_ok {
        return Err(err());
    }
    let (year, month, day) =
        (field(0, 4).ok_or_else(err)?, field(5, 2).ok_or_else(err)?, field(8, 2).ok_or_else(err)?);
    let (hour, minute, second) = if date_only {
        (0, 0, 0)
    } else {
        (field(11, 2).ok_or_else(err)?, field(14, 2).ok_or_else(err)?, field(17, 2).ok_or_else(err)?)
    };
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let month_days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let valid = (1..=12).contains(&month)
        && day >= 1
        && day <= month_days[(month.clamp(1, 12) - 1) as usize]
        && hour < 24
        && minute < 60
        && second < 60;
    if !valid {
        return Err(err());
    }
    let days = crate::functions::timestamp_input::days_from_civil(year, month, day).ok_or_else(err)?;
    Ok(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000)
}

impl Config {
    fn new(options: &ConnectorOptions, schema: SchemaRef) -> Result<Self, OptionError> {
        check_known_options(CONNECTOR, options, KNOWN_OPTIONS)?;
        let raw_type = options.get(OPT_TABLE_TYPE).ok_or_else(|| {
            OptionError(format!(
                "connector '{CONNECTOR}' needs option '{OPT_TABLE_TYPE}': 'Person', 'Auction' or 'Bid'"
            ))
        })?;
        let table = TableType::parse(raw_type)
            .ok_or_else(|| invalid_value_got(OPT_TABLE_TYPE, "'Person', 'Auction' or 'Bid'", raw_type))?;

        let mut columns = Vec::with_capacity(schema.fields().len());
        for field in schema.fields() {
            let name = field.name().to_ascii_lowercase();
            let Some(&(_, col, kind)) = table.columns().iter().find(|(n, _, _)| *n == name) else {
                return Err(OptionError(format!(
                    "column '{}' is not a column of nexmark table type {}; its columns are: {}",
                    field.name(),
                    table.name(),
                    table.columns_text()
                )));
            };
            if *field.data_type() != kind.data_type() {
                return Err(OptionError(format!(
                    "column '{}' of nexmark table type {} must be {} (Arrow {}), not {}; its columns are: {}",
                    field.name(),
                    table.name(),
                    kind.sql(),
                    kind.data_type(),
                    field.data_type(),
                    table.columns_text()
                )));
            }
            columns.push(col);
        }

        let event_num = parse_u64(options, OPT_EVENT_NUM, 0, MAX_OFFSET_EVENTS)?;
        let splits = parse_u64(options, OPT_SPLIT_NUM, 1, MAX_SPLITS)?.unwrap_or(1);
        let gap_ns = parse_u64(options, OPT_GAP, 0, MAX_GAP_NS)?.unwrap_or(DEFAULT_GAP_NS);
        let chunk = parse_u64(options, OPT_CHUNK, 1, MAX_CHUNK)?.map_or(DEFAULT_BATCH_ROWS, |c| c as usize);
        let base_ms = match options.get(OPT_BASE_TIME) {
            Some(raw) => parse_base_time(raw)?,
            None => DEFAULT_BASE_TIME_MS,
        };
        let real_time = parse_flag(options, OPT_REAL_TIME)?;
        let seed = parse_u64(options, OPT_SEED, 0, u64::MAX)?.unwrap_or(DEFAULT_SEED);

        let mut keys = [0; NUM_STREAMS];
        for (stream, key) in keys.iter_mut().enumerate() {
            *key = stream_key(seed, stream);
        }
        let with_channels =
            table == TableType::Bid && columns.iter().any(|c| matches!(c, Col::Channel | Col::Url));
        Ok(Config {
            table,
            schema,
            columns,
            event_num,
            splits,
            gap_ns,
            chunk,
            base_us: base_ms * 1000,
            real_time,
            keys,
            pools: Pools::new(seed, with_channels),
        })
    }

    /// The stream of column `col` for event number `n`.
    #[inline(always)]
    fn rng(&self, col: Col, n: u64) -> SplitMix64 {
        SplitMix64::new(self.keys[col as usize].wrapping_add(n.wrapping_mul(EVENT_STRIDE)))
    }

    /// Event time of event number `n`, microseconds since the epoch.
    #[inline(always)]
    fn timestamp_us(&self, n: u64) -> i64 {
        let offset_us = match n.checked_mul(self.gap_ns) {
            Some(ns) => ns / 1000,
            None => (u128::from(n) * u128::from(self.gap_ns) / 1000).min(i64::MAX as u128) as u64,
        };
        self.base_us.saturating_add(offset_us.min(i64::MAX as u64) as i64)
    }

    // Draws shared by a column and the `extra` that pads around it.

    #[inline(always)]
    fn name_index(&self, n: u64) -> usize {
        self.rng(Col::Name, n).below(self.pools.names.len() as u64) as usize
    }

    #[inline(always)]
    fn city_index(&self, n: u64) -> usize {
        self.rng(Col::City, n).below(US_CITIES.len() as u64) as usize
    }

    #[inline(always)]
    fn state_index(&self, n: u64) -> usize {
        self.rng(Col::State, n).below(US_STATES.len() as u64) as usize
    }

    /// Lengths of the two random parts of `xxxxx@yyyy.com`; the rng continues with their
    /// starts.
    #[inline(always)]
    fn email_lens(&self, n: u64) -> (usize, usize, SplitMix64) {
        let mut r = self.rng(Col::Email, n);
        let user = 3 + r.below(4) as usize;
        let domain = 3 + r.below(2) as usize;
        (user, domain, r)
    }

    #[inline(always)]
    fn item_name_len(&self, n: u64) -> (usize, SplitMix64) {
        let mut r = self.rng(Col::ItemName, n);
        (3 + r.below(17) as usize, r)
    }

    #[inline(always)]
    fn description_len(&self, n: u64) -> (usize, SplitMix64) {
        let mut r = self.rng(Col::Description, n);
        (3 + r.below(97) as usize, r)
    }

    #[inline(always)]
    fn initial_bid(&self, n: u64) -> i64 {
        next_price(&mut self.rng(Col::InitialBid, n))
    }

    #[inline(always)]
    fn channel_index(&self, n: u64) -> usize {
        let mut r = self.rng(Col::Channel, n);
        if r.below(HOT_CHANNEL_RATIO) > 0 {
            r.below(HOT_CHANNELS.len() as u64) as usize
        } else {
            HOT_CHANNELS.len() + r.below(NUM_CHANNELS) as usize
        }
    }

    /// One column for the events `events` (all of this table's type).
    fn column(&self, col: Col, events: &[u64]) -> ExecResult<ArrayRef> {
        let pools = &self.pools;
        Ok(match col {
            Col::PersonId => int_column(events, |n| last_base0_person_id(n) + FIRST_PERSON_ID),
            Col::AuctionId => int_column(events, |n| last_base0_auction_id(n) + FIRST_AUCTION_ID),
            Col::DateTime => ts_column(events, |n| self.timestamp_us(n)),
            Col::Name => {
                str_column(events, 12, |n, out| out.extend_from_slice(pools.names.get(self.name_index(n))))?
            }
            Col::City => {
                str_column(events, 8, |n, out| out.extend_from_slice(pools.cities.get(self.city_index(n))))?
            }
            Col::State => {
                str_column(events, 2, |n, out| out.extend_from_slice(pools.states.get(self.state_index(n))))?
            }
            Col::Email => str_column(events, 14, |n, out| {
                let (user, domain, mut r) = self.email_lens(n);
                out.extend_from_slice(pools.letter_slice(&mut r, user));
                out.push(b'@');
                out.extend_from_slice(pools.letter_slice(&mut r, domain));
                out.extend_from_slice(b".com");
            })?,
            Col::CreditCard => str_column(events, 19, |n, out| {
                let mut r = self.rng(Col::CreditCard, n);
                for group in 0..4 {
                    if group > 0 {
                        out.push(b' ');
                    }
                    let v = r.below(10_000) as u16;
                    out.extend_from_slice(&[
                        b'0' + (v / 1000) as u8,
                        b'0' + (v / 100 % 10) as u8,
                        b'0' + (v / 10 % 10) as u8,
                        b'0' + (v % 10) as u8,
                    ]);
                }
            })?,
            Col::ItemName => str_column(events, 12, |n, out| {
                let (len, mut r) = self.item_name_len(n);
                out.extend_from_slice(pools.text_slice(&mut r, len));
            })?,
            Col::Description => str_column(events, 52, |n, out| {
                let (len, mut r) = self.description_len(n);
                out.extend_from_slice(pools.text_slice(&mut r, len));
            })?,
            Col::InitialBid => int_column(events, |n| self.initial_bid(n)),
            Col::Reserve => {
                int_column(events, |n| self.initial_bid(n) + next_price(&mut self.rng(Col::Reserve, n)))
            }
            Col::Expires => ts_column(events, |n| {
                let now = self.timestamp_us(n);
                let events_for_auctions =
                    (NUM_IN_FLIGHT_AUCTIONS as u64 * PROPORTION_DENOMINATOR) / AUCTION_PROPORTION;
                let horizon_ms = (self.timestamp_us(n.saturating_add(events_for_auctions)) - now) / 1000;
                let length_ms = 1 + self.rng(Col::Expires, n).below((horizon_ms * 2).max(1) as u64) as i64;
                now.saturating_add(length_ms * 1000)
            }),
            Col::Seller => int_column(events, |n| {
                let mut r = self.rng(Col::Seller, n);
                let base0 = if r.below(HOT_SELLER_RATIO) > 0 {
                    (last_base0_person_id(n) / HOT_GROUP) * HOT_GROUP
                } else {
                    next_base0_person_id(n, &mut r)
                };
                base0 + FIRST_PERSON_ID
            }),
            Col::Category => int_column(events, |n| {
                FIRST_CATEGORY_ID + self.rng(Col::Category, n).below(NUM_CATEGORIES) as i64
            }),
            Col::BidAuction => int_column(events, |n| {
                let mut r = self.rng(Col::BidAuction, n);
                let base0 = if r.below(HOT_AUCTION_RATIO) > 0 {
                    (last_base0_auction_id(n) / HOT_GROUP) * HOT_GROUP
                } else {
                    next_base0_auction_id(n, &mut r)
                };
                base0 + FIRST_AUCTION_ID
            }),
            Col::Bidder => int_column(events, |n| {
                let mut r = self.rng(Col::Bidder, n);
                let base0 = if r.below(HOT_BIDDER_RATIO) > 0 {
                    // The second person of the latest group, so hot bidders are not hot sellers.
                    (last_base0_person_id(n) / HOT_GROUP) * HOT_GROUP + 1
                } else {
                    next_base0_person_id(n, &mut r)
                };
                base0 + FIRST_PERSON_ID
            }),
            Col::Price => int_column(events, |n| next_price(&mut self.rng(Col::Price, n))),
            Col::Channel => str_column(events, 10, |n, out| {
                out.extend_from_slice(pools.channels.get(self.channel_index(n)))
            })?,
            Col::Url => {
                str_column(events, 60, |n, out| out.extend_from_slice(pools.urls.get(self.channel_index(n))))?
            }
            Col::Extra => match self.table {
                TableType::Person => str_column(events, 140, |n, out| {
                    let (user, domain, _) = self.email_lens(n);
                    let current = 8
                        + pools.names.get(self.name_index(n)).len()
                        + user
                        + domain
                        + 5
                        + 19
                        + pools.cities.get(self.city_index(n)).len()
                        + pools.states.get(self.state_index(n)).len();
                    let mut r = self.rng(Col::Extra, n);
                    let len = extra_len(&mut r, current as u64, AVG_PERSON_BYTES);
                    out.extend_from_slice(pools.text_slice(&mut r, len));
                })?,
                TableType::Auction => str_column(events, 400, |n, out| {
                    let current = 8 + self.item_name_len(n).0 + self.description_len(n).0 + 8 + 8 + 8 + 8 + 8;
                    let mut r = self.rng(Col::Extra, n);
                    let len = extra_len(&mut r, current as u64, AVG_AUCTION_BYTES);
                    out.extend_from_slice(pools.text_slice(&mut r, len));
                })?,
                TableType::Bid => str_column(events, 68, |n, out| {
                    let mut r = self.rng(Col::Extra, n);
                    let len = extra_len(&mut r, 8 + 8 + 8 + 8, AVG_BID_BYTES);
                    out.extend_from_slice(pools.text_slice(&mut r, len));
                })?,
            },
        })
    }
}

#[inline(always)]
fn int_column(events: &[u64], f: impl Fn(u64) -> i64) -> ArrayRef {
    Arc::new(Int64Array::from(events.iter().map(|&n| f(n)).collect::<Vec<i64>>()))
}

#[inline(always)]
fn ts_column(events: &[u64], f: impl Fn(u64) -> i64) -> ArrayRef {
    Arc::new(TimestampMicrosecondArray::from(events.iter().map(|&n| f(n)).collect::<Vec<i64>>()))
}

/// A Utf8 column built straight into its value and offset buffers; `avg` sizes the value
/// buffer up front.
#[inline(always)]
fn str_column(events: &[u64], avg: usize, mut f: impl FnMut(u64, &mut Vec<u8>)) -> ExecResult<ArrayRef> {
    let mut values = Vec::with_capacity(events.len() * avg);
    let mut offsets = Vec::with_capacity(events.len() + 1);
    offsets.push(0i32);
    for &n in events {
        f(n, &mut values);
        let end = i32::try_from(values.len())
            .map_err(|_| ExecError::Internal("nexmark: a string column of one batch exceeds 2 GiB".into()))?;
        offsets.push(end);
    }
    let array =
        StringArray::try_new(OffsetBuffer::new(ScalarBuffer::from(offsets)), Buffer::from_vec(values), None)?;
    Ok(Arc::new(array))
}

// ---------------------------------------------------------------------------------------
// Splits.

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Which event numbers split `split` of `splits` owns for one table type. The split's
/// event numbers are `split + j * splits`; whether one is of the type repeats with period
/// `period` in `j`, with the matching `j`s of a period in `hits`. So row `k` of the split is
/// event number `split + (k / hits.len() * period + hits[k % hits.len()]) * splits`.
struct SplitMap {
    split: u64,
    splits: u64,
    period: u64,
    hits: Vec<u64>,
}

impl SplitMap {
    fn new(split: u64, splits: u64, table: TableType) -> Self {
        let period = PROPORTION_DENOMINATOR / gcd(splits, PROPORTION_DENOMINATOR);
        let hits = (0..period).filter(|j| table.owns(split + j * splits)).collect();
        SplitMap { split, splits, period, hits }
    }

    /// Number of the split's rows with an event number below `end`.
    fn rows_before(&self, end: u64) -> u64 {
        if end <= self.split || self.hits.is_empty() {
            return 0;
        }
        let j_end = (end - self.split).div_ceil(self.splits);
        let rem = j_end % self.period;
        (j_end / self.period) * self.hits.len() as u64 + self.hits.partition_point(|&j| j < rem) as u64
    }

    /// Appends the event numbers of rows `from..to` (requires non-empty `hits`).
    fn events(&self, from: u64, to: u64, out: &mut Vec<u64>) {
        let c = self.hits.len() as u64;
        let (mut q, mut r) = (from / c, (from % c) as usize);
        for _ in from..to {
            out.push(self.split + (q * self.period + self.hits[r]) * self.splits);
            r += 1;
            if r == self.hits.len() {
                r = 0;
                q += 1;
            }
        }
    }

    fn event_of(&self, k: u64) -> u64 {
        let c = self.hits.len() as u64;
        self.split + ((k / c) * self.period + self.hits[(k % c) as usize]) * self.splits
    }
}

// ---------------------------------------------------------------------------------------
// The connector and its readers.

/// The `nexmark` connector; see the module documentation and `docs/connectors/nexmark.md`.
pub struct NexmarkConnector {
    config: Arc<Config>,
}

impl NexmarkConnector {
    /// Validates the options (`nexmark.*`, see `docs/connectors/nexmark.md`) and the
    /// declared columns against the table type.
    pub fn new(options: &ConnectorOptions, schema: SchemaRef) -> Result<Self, OptionError> {
        Ok(NexmarkConnector { config: Arc::new(Config::new(options, schema)?) })
    }

    /// A reader of split `split` (not checked against `splits()`).
    fn reader(&self, split: u64) -> NexmarkReader {
        let config = Arc::clone(&self.config);
        let map = SplitMap::new(split, config.splits, config.table);
        let limit = config.event_num.map(|e| map.rows_before(e));
        NexmarkReader { config, map, limit, emitted: 0, events: Vec::new(), clock: None }
    }
}

impl Connector for NexmarkConnector {
    fn splits(&self) -> usize {
        self.config.splits as usize
    }

    fn open(&self, split: usize) -> ExecResult<Box<dyn SplitReader>> {
        if split as u64 >= self.config.splits {
            return Err(ExecError::Internal(format!(
                "nexmark: split {split} opened, the source has {} splits",
                self.config.splits
            )));
        }
        Ok(Box::new(self.reader(split as u64)))
    }

    fn bounded(&self) -> bool {
        self.config.event_num.is_some()
    }
}

struct NexmarkReader {
    config: Arc<Config>,
    map: SplitMap,
    /// Rows of this split in total (bounded sources).
    limit: Option<u64>,
    /// Rows returned so far: the offset.
    emitted: u64,
    /// Scratch: event numbers of the batch being built.
    events: Vec<u64>,
    /// With real time: when the reader started and its first event number.
    clock: Option<(Instant, u64)>,
}

impl NexmarkReader {
    /// The batch of rows `from..to`.
    fn batch(&mut self, from: u64, to: u64) -> ExecResult<RecordBatch> {
        self.events.clear();
        self.map.events(from, to, &mut self.events);
        let columns = self
            .config
            .columns
            .iter()
            .map(|&col| self.config.column(col, &self.events))
            .collect::<ExecResult<_>>()?;
        let options = RecordBatchOptions::new().with_row_count(Some(self.events.len()));
        Ok(RecordBatch::try_new_with_options(Arc::clone(&self.config.schema), columns, &options)?)
    }
}

impl SplitReader for NexmarkReader {
    fn next_batch(&mut self) -> ExecResult<ReadOutcome> {
        // A split whose event numbers never fall on this table type (e.g. split 1 of 50 of
        // `Person`) has no rows at all, bounded or not.
        if self.map.hits.is_empty() {
            return Ok(ReadOutcome::Finished);
        }
        let mut end = self.emitted.saturating_add(self.config.chunk as u64);
        if let Some(limit) = self.limit {
            if self.emitted >= limit {
                return Ok(ReadOutcome::Finished);
            }
            end = end.min(limit);
        }
        if self.config.real_time && self.config.gap_ns > 0 {
            let next_event = self.map.event_of(self.emitted);
            let (start, first_event) = *self.clock.get_or_insert_with(|| (Instant::now(), next_event));
            let elapsed_ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
            let due_ns = (next_event - first_event).saturating_mul(self.config.gap_ns);
            if due_ns > elapsed_ns {
                return Ok(ReadOutcome::Wait(Duration::from_nanos(due_ns - elapsed_ns)));
            }
            let ready_end = first_event.saturating_add(elapsed_ns / self.config.gap_ns).saturating_add(1);
            end = end.min(self.map.rows_before(ready_end)).max(self.emitted + 1);
        }
        let batch = self.batch(self.emitted, end)?;
        self.emitted = end;
        Ok(ReadOutcome::Batch(batch))
    }

    fn offset(&self) -> serde_json::Value {
        serde_json::json!({ "events": self.emitted })
    }

    fn seek(&mut self, offset: &serde_json::Value) -> ExecResult<()> {
        let events = offset.get("events").and_then(|v| v.as_u64()).filter(|&e| e <= MAX_OFFSET_EVENTS);
        match events {
            Some(events) => {
                self.emitted = events;
                self.clock = None;
                Ok(())
            }
            None => Err(ExecError::Connector(format!(
                "nexmark: cannot resume from offset {offset}; expected {{\"events\": <row count>}}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray};
    use arrow::compute::concat_batches;
    use arrow::datatypes::{Field, Schema, TimestampMicrosecondType};
    use arrow::util::display::array_value_to_string;

    fn ts() -> DataType {
        DataType::Timestamp(TimeUnit::Microsecond, None)
    }

    fn full_schema(table: TableType) -> SchemaRef {
        Arc::new(Schema::new(
            table.columns().iter().map(|(n, _, k)| Field::new(*n, k.data_type(), true)).collect::<Vec<_>>(),
        ))
    }

    fn opts(pairs: &[(&str, &str)]) -> ConnectorOptions {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn connector(table: &str, extra: &[(&str, &str)]) -> NexmarkConnector {
        let mut o = opts(extra);
        o.insert(OPT_TABLE_TYPE.into(), table.into());
        let t = TableType::parse(table).expect("table type");
        NexmarkConnector::new(&o, full_schema(t)).expect("valid options")
    }

    fn read_all(reader: &mut dyn SplitReader) -> Vec<RecordBatch> {
        let mut out = Vec::new();
        loop {
            match reader.next_batch().expect("read") {
                ReadOutcome::Batch(b) => {
                    assert!(b.num_rows() > 0);
                    out.push(b)
                }
                ReadOutcome::Finished => return out,
                ReadOutcome::Wait(d) => panic!("unexpected wait {d:?}"),
            }
        }
    }

    fn read_n(reader: &mut dyn SplitReader, batches: usize) -> Vec<RecordBatch> {
        (0..batches)
            .map(|_| match reader.next_batch().expect("read") {
                ReadOutcome::Batch(b) => b,
                other => panic!("expected a batch, got {other:?}"),
            })
            .collect()
    }

    fn concat(batches: &[RecordBatch]) -> RecordBatch {
        concat_batches(&batches[0].schema(), batches).expect("concat")
    }

    fn rows(batch: &RecordBatch) -> Vec<Vec<String>> {
        (0..batch.num_rows())
            .map(|i| batch.columns().iter().map(|c| array_value_to_string(c, i).expect("display")).collect())
            .collect()
    }

    fn int_col(batch: &RecordBatch, name: &str) -> Vec<i64> {
        batch
            .column_by_name(name)
            .expect("column")
            .as_primitive::<arrow::datatypes::Int64Type>()
            .values()
            .to_vec()
    }

    fn ts_col(batch: &RecordBatch, name: &str) -> Vec<i64> {
        batch
            .column_by_name(name)
            .expect("column")
            .as_primitive::<TimestampMicrosecondType>()
            .values()
            .to_vec()
    }

    fn err_of(options: &[(&str, &str)], schema: SchemaRef) -> String {
        match NexmarkConnector::new(&opts(options), schema) {
            Ok(_) => panic!("expected an error for {options:?}"),
            Err(e) => e.0,
        }
    }

    /// FNV-1a over every value of `batch` as displayed, row by row: a fingerprint that
    /// changes if a single generated value does.
    fn fingerprint(batch: &RecordBatch) -> u64 {
        rows(batch).iter().flatten().fold(0xcbf2_9ce4_8422_2325u64, |h, value| {
            value.bytes().chain([0xff]).fold(h, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
        })
    }

    /// The generated data of a seed never changes: checkpoints record offsets, not rows,
    /// and benchmarks compare runs.
    #[test]
    fn generated_values_are_pinned() {
        let mut got = Vec::new();
        for table in ["Person", "Auction", "Bid"] {
            for seed in [None, Some("7")] {
                let mut extra = vec![(OPT_EVENT_NUM, "5000")];
                extra.extend(seed.map(|s| (OPT_SEED, s)));
                got.push(fingerprint(&concat(&read_all(&mut *connector(table, &extra).open(0).unwrap()))));
            }
        }
        assert_eq!(
            got,
            [
                2_941_851_791_871_700_740,
                13_116_752_202_045_177_156,
                1_438_182_579_154_585_132,
                17_915_811_566_704_525_018,
                14_169_589_960_044_138_510,
                3_562_078_840_552_628_954
            ]
        );
    }

    #[test]
    fn deterministic_across_readers_and_connectors() {
        for table in ["Person", "Auction", "Bid"] {
            let a = concat(&read_all(&mut *connector(table, &[(OPT_EVENT_NUM, "5000")]).open(0).unwrap()));
            let b = concat(&read_all(&mut *connector(table, &[(OPT_EVENT_NUM, "5000")]).open(0).unwrap()));
            assert_eq!(a, b, "{table}");
            let c = concat(&read_all(
                &mut *connector(table, &[(OPT_EVENT_NUM, "5000"), (OPT_SEED, "7")]).open(0).unwrap(),
            ));
            assert_ne!(a, c, "{table}: a different seed gives different rows");
        }
    }

    #[test]
    fn event_num_bounds_each_type_share() {
        // Events 0..1010: persons at 0, 50, ..., 1000; auctions at 1..4 (mod 50); bids the rest.
        for (table, expected) in [("Person", 21), ("Auction", 63), ("Bid", 926)] {
            let c = connector(table, &[(OPT_EVENT_NUM, "1010"), (OPT_CHUNK, "100")]);
            assert!(c.bounded());
            let mut reader = c.open(0).unwrap();
            let batches = read_all(&mut *reader);
            assert!(batches.iter().all(|b| b.num_rows() <= 100));
            assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), expected, "{table}");
            assert!(matches!(reader.next_batch().unwrap(), ReadOutcome::Finished));
        }
        let c = connector("Bid", &[]);
        assert!(!c.bounded());
        let batches = read_n(&mut *c.open(0).unwrap(), 3);
        assert!(batches.iter().all(|b| b.num_rows() == DEFAULT_BATCH_ROWS));
    }

    #[test]
    fn splits_together_equal_one_split() {
        for table in ["Person", "Auction", "Bid"] {
            let single =
                concat(&read_all(&mut *connector(table, &[(OPT_EVENT_NUM, "20000")]).open(0).unwrap()));
            for splits in ["3", "7", "50"] {
                let c = connector(
                    table,
                    &[(OPT_EVENT_NUM, "20000"), (OPT_SPLIT_NUM, splits), (OPT_CHUNK, "333")],
                );
                let mut all = Vec::new();
                for s in 0..c.splits() {
                    all.extend(read_all(&mut *c.open(s).unwrap()));
                }
                let merged = concat(&all);
                // date_time is strictly increasing in the event number: sort by it.
                let times = ts_col(&merged, "date_time");
                let mut order: Vec<usize> = (0..merged.num_rows()).collect();
                order.sort_by_key(|&i| times[i]);
                let merged_rows = rows(&merged);
                let sorted: Vec<_> = order.iter().map(|&i| merged_rows[i].clone()).collect();
                assert_eq!(sorted, rows(&single), "{table} with {splits} splits");
            }
        }
    }

    #[test]
    fn seek_resumes_exactly() {
        for table in ["Person", "Auction", "Bid"] {
            let c = connector(table, &[(OPT_SPLIT_NUM, "3"), (OPT_CHUNK, "1000")]);
            let uninterrupted = concat(&read_n(&mut *c.open(1).unwrap(), 5));
            let mut first = c.open(1).unwrap();
            let mut parts = read_n(&mut *first, 2);
            let offset = first.offset();
            assert_eq!(offset, serde_json::json!({ "events": 2000 }));
            let mut resumed = c.open(1).unwrap();
            resumed.seek(&offset).unwrap();
            parts.extend(read_n(&mut *resumed, 3));
            assert_eq!(concat(&parts), uninterrupted, "{table}");
        }
        let mut reader = connector("Bid", &[]).open(0).unwrap();
        assert!(reader.seek(&serde_json::json!({ "rows": 3 })).is_err());
        assert!(reader.seek(&serde_json::json!("x")).is_err());
    }

    #[test]
    fn subset_and_reordered_columns() {
        let full = concat(&read_all(&mut *connector("Auction", &[(OPT_EVENT_NUM, "3000")]).open(0).unwrap()));
        let schema = Arc::new(Schema::new(vec![
            Field::new("EXTRA", DataType::Utf8, false),
            Field::new("seller", DataType::Int64, true),
            Field::new("Date_Time", ts(), true),
            Field::new("reserve", DataType::Int64, false),
        ]));
        let o = opts(&[(OPT_TABLE_TYPE, "auction"), (OPT_EVENT_NUM, "3000")]);
        let c = NexmarkConnector::new(&o, Arc::clone(&schema)).unwrap();
        let part = concat(&read_all(&mut *c.open(0).unwrap()));
        assert_eq!(part.schema(), schema);
        for (i, name) in ["extra", "seller", "date_time", "reserve"].iter().enumerate() {
            assert_eq!(part.column(i).as_ref(), full.column_by_name(name).unwrap().as_ref(), "{name}");
        }
        // No columns at all still counts rows.
        let c = NexmarkConnector::new(&o, Arc::new(Schema::empty())).unwrap();
        let batches = read_all(&mut *c.open(0).unwrap());
        assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 180);
    }

    #[test]
    fn option_errors() {
        let bid = full_schema(TableType::Bid);
        let e = err_of(&[(OPT_TABLE_TYPE, "Bid"), ("nexmark.speed", "1")], Arc::clone(&bid));
        assert!(e.contains("unknown option 'nexmark.speed'") && e.contains(OPT_EVENT_NUM), "{e}");
        let e = err_of(&[], Arc::clone(&bid));
        assert!(e.contains(OPT_TABLE_TYPE), "{e}");
        let e = err_of(&[(OPT_TABLE_TYPE, "bids")], Arc::clone(&bid));
        assert!(e.contains("'Person', 'Auction' or 'Bid'") && e.contains("'bids'"), "{e}");
        for (key, value) in [
            (OPT_EVENT_NUM, "-1"),
            (OPT_EVENT_NUM, "ten"),
            (OPT_SPLIT_NUM, "0"),
            (OPT_CHUNK, "0"),
            (OPT_GAP, "1.5"),
            (OPT_REAL_TIME, "maybe"),
            (OPT_SEED, "x"),
            (OPT_BASE_TIME, "2015-13-01 00:00:00"),
            (OPT_BASE_TIME, "yesterday"),
        ] {
            let e = err_of(&[(OPT_TABLE_TYPE, "Bid"), (key, value)], Arc::clone(&bid));
            assert!(e.contains(key) && e.contains(value), "{e}");
        }
        let schema = Arc::new(Schema::new(vec![Field::new("price", DataType::Utf8, true)]));
        let e = err_of(&[(OPT_TABLE_TYPE, "Bid")], schema);
        assert!(
            e.contains("'price'") && e.contains("BIGINT") && e.contains("auction BIGINT, bidder BIGINT"),
            "{e}"
        );
        let schema = Arc::new(Schema::new(vec![Field::new("date_time", DataType::Int64, true)]));
        let e = err_of(&[(OPT_TABLE_TYPE, "Person")], schema);
        assert!(
            e.contains("'date_time'") && e.contains("TIMESTAMP") && e.contains("credit_card VARCHAR"),
            "{e}"
        );
        let schema = Arc::new(Schema::new(vec![Field::new("seller", DataType::Int64, true)]));
        let e = err_of(&[(OPT_TABLE_TYPE, "Bid")], schema);
        assert!(e.contains("'seller'") && e.contains("Bid") && e.contains("channel VARCHAR"), "{e}");
    }

    #[test]
    fn base_time_formats() {
        assert_eq!(parse_base_time("2015-07-15 00:00:00").unwrap(), DEFAULT_BASE_TIME_MS);
        assert_eq!(parse_base_time("2020-02-29T12:34:56").unwrap(), 1_582_979_696_000);
        assert_eq!(parse_base_time("1970-01-01").unwrap(), 0);
        assert_eq!(parse_base_time(" 1577836800000 ").unwrap(), 1_577_836_800_000);
        assert!(parse_base_time("2019-02-29 00:00:00").is_err());
        assert!(parse_base_time("2019-02-01 24:00:00").is_err());
        assert!(parse_base_time("2019-02-01 +1:00:00").is_err());
    }

    #[test]
    fn timestamps_follow_the_gap() {
        let c = connector("Person", &[(OPT_EVENT_NUM, "5000")]);
        let people = concat(&read_all(&mut *c.open(0).unwrap()));
        let times = ts_col(&people, "date_time");
        assert_eq!(times[0], DEFAULT_BASE_TIME_MS * 1000);
        assert!(times.windows(2).all(|w| w[1] - w[0] == 50 * 100), "persons every 50 events of 100us");
        assert_eq!(int_col(&people, "id"), (1000..1100).collect::<Vec<_>>());

        let c = connector(
            "Bid",
            &[(OPT_EVENT_NUM, "100"), (OPT_GAP, "1000000"), (OPT_BASE_TIME, "1000"), (OPT_SPLIT_NUM, "2")],
        );
        let bids = concat(&read_all(&mut *c.open(1).unwrap()));
        let times = ts_col(&bids, "date_time");
        // Split 1 of 2: the odd event numbers that are bids: 5, 7, ..., 49, 55, 57, ...
        let expected: Vec<i64> =
            (0..100).filter(|n| n % 2 == 1 && n % 50 >= 4).map(|n| 1_000_000 + n * 1000).collect();
        assert_eq!(times, expected);
    }

    #[test]
    fn values_are_plausible() {
        let events = 200_000u64;
        let bids = concat(&read_all(&mut *connector("Bid", &[(OPT_EVENT_NUM, "200000")]).open(0).unwrap()));
        let auctions =
            concat(&read_all(&mut *connector("Auction", &[(OPT_EVENT_NUM, "200000")]).open(0).unwrap()));
        let people =
            concat(&read_all(&mut *connector("Person", &[(OPT_EVENT_NUM, "200000")]).open(0).unwrap()));
        assert_eq!(bids.num_rows() as u64, events / 50 * 46);

        // Auction ids are consecutive from 1000; a bid's auction is in flight (or up to 10 ahead).
        let auction_ids = int_col(&auctions, "id");
        assert_eq!(auction_ids, (1000..1000 + auction_ids.len() as i64).collect::<Vec<_>>());
        let last_auction = *auction_ids.last().unwrap();
        let times = ts_col(&bids, "date_time");
        let base = DEFAULT_BASE_TIME_MS * 1000;
        let mut hot_auction = 0;
        let mut hot_bidder = 0;
        for (i, (&auction, &bidder)) in
            int_col(&bids, "auction").iter().zip(&int_col(&bids, "bidder")).enumerate()
        {
            let n = ((times[i] - base) / 100) as u64;
            let last = last_base0_auction_id(n) + 1000;
            assert!(
                auction <= last + AUCTION_ID_LEAD && auction >= (last - 100).max(1000),
                "{auction} at {n}"
            );
            assert!(auction <= last_auction + AUCTION_ID_LEAD);
            hot_auction += usize::from(auction == (last - 1000) / 100 * 100 + 1000);
            let last_person = last_base0_person_id(n) + 1000;
            assert!(bidder <= last_person + PERSON_ID_LEAD && bidder >= 1000);
            hot_bidder += usize::from(bidder == (last_person - 1000) / 100 * 100 + 1001);
        }
        let share = |count: usize| count as f64 / bids.num_rows() as f64;
        assert!((0.48..0.56).contains(&share(hot_auction)), "hot auctions {}", share(hot_auction));
        assert!((0.73..0.80).contains(&share(hot_bidder)), "hot bidders {}", share(hot_bidder));

        let prices = int_col(&bids, "price");
        assert!(prices.iter().all(|&p| (100..=100_000_000).contains(&p)));
        let channels = bids.column_by_name("channel").unwrap().as_string::<i32>();
        let urls = bids.column_by_name("url").unwrap().as_string::<i32>();
        let hot = channels.iter().filter(|c| HOT_CHANNELS.contains(&c.unwrap())).count();
        assert!((0.48..0.52).contains(&share(hot)), "hot channels {}", share(hot));
        assert!(urls.iter().all(|u| u.unwrap().starts_with("https://www.nexmark.com/")));
        // A channel always comes with the same url.
        let mut url_of = std::collections::HashMap::new();
        for (c, u) in channels.iter().zip(urls.iter()) {
            assert_eq!(*url_of.entry(c.unwrap()).or_insert(u.unwrap()), u.unwrap());
        }

        // Average event sizes near the standard's (extra pads them).
        let avg_len = |b: &RecordBatch, name: &str| {
            let a = b.column_by_name(name).unwrap().as_string::<i32>();
            a.value_data().len() as f64 / a.len() as f64
        };
        let bid_size = 32.0 + avg_len(&bids, "extra");
        assert!((95.0..105.0).contains(&bid_size), "bid size {bid_size}");
        let auction_size = 48.0
            + avg_len(&auctions, "item_name")
            + avg_len(&auctions, "description")
            + avg_len(&auctions, "extra");
        assert!((480.0..520.0).contains(&auction_size), "auction size {auction_size}");
        let person_size = 8.0
            + ["name", "email_address", "credit_card", "city", "state", "extra"]
                .iter()
                .map(|c| avg_len(&people, c))
                .sum::<f64>();
        assert!((190.0..210.0).contains(&person_size), "person size {person_size}");

        // Auctions: reserve above the initial bid, expiry after creation, categories 10..15.
        let initial = int_col(&auctions, "initial_bid");
        let reserve = int_col(&auctions, "reserve");
        assert!(initial.iter().zip(&reserve).all(|(i, r)| r > i && *i >= 100));
        let created = ts_col(&auctions, "date_time");
        let expires = ts_col(&auctions, "expires");
        assert!(created.iter().zip(&expires).all(|(c, e)| e > c && e - c <= 2 * 1666 * 100 + 1000));
        assert!(int_col(&auctions, "category").iter().all(|c| (10..15).contains(c)));
        let sellers = int_col(&auctions, "seller");
        let person_count = people.num_rows() as i64;
        assert!(sellers.iter().all(|s| (1000..1000 + person_count + PERSON_ID_LEAD).contains(s)));

        // Persons: fixed lists, card format, email shape.
        let names = people.column_by_name("name").unwrap().as_string::<i32>();
        assert!(names.iter().all(|n| {
            let (first, last) = n.unwrap().split_once(' ').unwrap();
            FIRST_NAMES.contains(&first) && LAST_NAMES.contains(&last)
        }));
        let cities = people.column_by_name("city").unwrap().as_string::<i32>();
        assert!(cities.iter().all(|c| US_CITIES.contains(&c.unwrap())));
        let states = people.column_by_name("state").unwrap().as_string::<i32>();
        assert!(states.iter().all(|s| US_STATES.contains(&s.unwrap())));
        let cards = people.column_by_name("credit_card").unwrap().as_string::<i32>();
        assert!(cards.iter().all(|c| {
            let c = c.unwrap();
            c.len() == 19 && c.split(' ').all(|g| g.len() == 4 && g.bytes().all(|b| b.is_ascii_digit()))
        }));
        let emails = people.column_by_name("email_address").unwrap().as_string::<i32>();
        assert!(emails.iter().all(|e| e.unwrap().ends_with(".com") && e.unwrap().contains('@')));
        assert_eq!(people.column(0).null_count(), 0);
    }

    #[test]
    fn empty_splits_finish() {
        // With 50 splits, only split 0 ever sees a person.
        let c = connector("Person", &[(OPT_SPLIT_NUM, "50")]);
        assert!(matches!(c.open(1).unwrap().next_batch().unwrap(), ReadOutcome::Finished));
        assert!(matches!(c.open(0).unwrap().next_batch().unwrap(), ReadOutcome::Batch(_)));
        assert!(c.open(50).is_err());
    }

    #[test]
    fn real_time_waits_for_event_time() {
        // One event per second of wall time: the first read returns the first event only.
        let c = connector("Bid", &[(OPT_REAL_TIME, "true"), (OPT_GAP, "1000000000")]);
        let mut reader = c.open(0).unwrap();
        match reader.next_batch().unwrap() {
            ReadOutcome::Batch(b) => assert_eq!(b.num_rows(), 1),
            other => panic!("expected one row, got {other:?}"),
        }
        match reader.next_batch().unwrap() {
            ReadOutcome::Wait(d) => {
                assert!(d > Duration::from_millis(100) && d <= Duration::from_secs(1), "{d:?}")
            }
            other => panic!("expected a wait, got {other:?}"),
        }
    }

    #[test]
    #[ignore]
    fn throughput() {
        for table in ["Bid", "Auction", "Person"] {
            let c = connector(table, &[(OPT_EVENT_NUM, "20000000")]);
            let mut reader = c.open(0).unwrap();
            let start = Instant::now();
            let mut rows = 0;
            while let ReadOutcome::Batch(b) = reader.next_batch().unwrap() {
                rows += b.num_rows();
            }
            let secs = start.elapsed().as_secs_f64();
            println!("{table}: {rows} rows in {secs:.2}s = {:.0} rows/s", rows as f64 / secs);
        }
    }
}
