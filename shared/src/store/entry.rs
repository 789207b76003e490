//! The byte format of a cached bundle: when and from which data version it was computed, when it was
//! last found current, when the day its figures count in ends, and the bundle's JSON, zstd-compressed with a dictionary of bundle JSON when
//! that makes it smaller.
//!
//! Layout (37-byte header, then the payload):
//!
//! | offset | bytes | field |
//! |---|---|---|
//! | 0 | 4 | [`MAGIC`] |
//! | 4 | 1 | payload encoding (`FLAG_*`) |
//! | 5 | 8 | `generated_at`, unix ms, i64 big-endian |
//! | 13 | 8 | `validated_at`, unix ms, i64 big-endian |
//! | 21 | 8 | data version, i64 big-endian |
//! | 29 | 8 | `day_ends_at`, unix ms, i64 big-endian: the end of the (tenant-local) day it was computed on |
//! | 37 | … | payload |
//!
//! `validated_at` sits at a fixed offset so that a revalidation rewrites it in place, and the data
//! version at another so that the rewrite can check it is marking the entry it compared.
//!
//! **Stores never go backwards.** Entries are ordered by their [`Entry::fence`], (data version,
//! `generated_at`): data versions only grow, so the greater pair describes newer data.
//! [`STORE_UNLESS_NEWER`] reads the stored entry's pair from its header and refuses to replace it
//! with a lesser one, in the one script call that stores, so a slow writer (a lease holder whose
//! lease expired, a warm refresh computed before a write) cannot put older data back.
//!
//! **When [`MAGIC`] must change:** whenever the header layout changes *or the bundle's JSON shape
//! changes* (a field added, renamed or given another meaning). Entries with another magic decode as
//! nothing, which is a miss: a new deployment then never serves bytes of the old shape. A retrained
//! compression dictionary needs a new `FLAG_*` value instead (old entries become misses the same way).

use std::cell::RefCell;
use std::sync::LazyLock;

use redis::Script;

use zstd::bulk::{Compressor, Decompressor};
use zstd::dict::{DecoderDictionary, EncoderDictionary};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub generated_at_ms: i64,
    pub validated_at_ms: i64,
    pub data_version: i64,
    /// When the day the bundle's 30-day figures count in ends (the tenant's local midnight; UTC
    /// midnight for the global view): from then on the entry is not served as current.
    pub day_ends_at_ms: i64,
    /// The bundle's JSON, uncompressed.
    pub json: String,
}

/// Format and bundle-shape version; see the module documentation for when it changes.
pub const MAGIC: &[u8; 4] = b"DBC2";
const FLAGS_OFFSET: usize = 4;
/// Where `generated_at` is, for the store's fence.
pub const GENERATED_AT_OFFSET: usize = 5;
/// Where `validated_at` is, for the in-place revalidation.
pub const VALIDATED_AT_OFFSET: usize = 13;
/// Where the data version is, for the in-place revalidation's check and the store's fence.
pub const DATA_VERSION_OFFSET: usize = 21;
const DAY_ENDS_AT_OFFSET: usize = 29;
pub const HEADER_LEN: usize = 37;

/// `PSETEX KEYS[1] ARGV[2] ARGV[1]` (`ARGV[1]` an encoded entry, `ARGV[2]` its expiry in ms), unless
/// `KEYS[1]` holds an entry of the same format whose [`Entry::fence`] is greater; returns 1 if it
/// stored, 0 if it refused. An equal pair stores (the retry of a store whose reply was lost); a
/// missing key, another format or bytes shorter than a header are replaced. Only the stored entry's
/// header is read. The pairs are compared byte by byte, big-endian with the sign bit flipped: exact
/// for every `i64`, where Lua's numbers are doubles (and its string order follows the locale).
pub static STORE_UNLESS_NEWER: LazyLock<Script> = LazyLock::new(|| store_script(""));

/// [`STORE_UNLESS_NEWER`], then the recompute lease `KEYS[2]` released if token `ARGV[3]` still holds
/// it (it may have expired and been retaken): the lease holder's store and release in one round trip,
/// in this order, so that a waiter that finds the lease gone finds the entry. The two keys share a
/// cluster slot (see [`crate::store::keys::Keys::recompute_lease`]).
pub static STORE_AND_RELEASE: LazyLock<Script> = LazyLock::new(|| {
    store_script("if redis.call('GET', KEYS[2]) == ARGV[3] then redis.call('DEL', KEYS[2]) end")
});

fn store_script(then: &str) -> Script {
    Script::new(&format!(
        "local function compare(a, b, at)
           for i = at + 1, at + 8 do
             local x, y = string.byte(a, i), string.byte(b, i)
             if i == at + 1 then x = (x + 128) % 256; y = (y + 128) % 256 end
             if x ~= y then return x < y and -1 or 1 end
           end
           return 0
         end
         local function store()
           local new = ARGV[1]
           local old = redis.call('GETRANGE', KEYS[1], 0, {header} - 1)
           if #old == {header} and #new >= {header}
              and string.sub(old, 1, {magic}) == string.sub(new, 1, {magic}) then
             local order = compare(old, new, {version})
             if order == 0 then order = compare(old, new, {generated}) end
             if order > 0 then return 0 end
           end
           redis.call('PSETEX', KEYS[1], ARGV[2], new)
           return 1
         end
         local stored = store()
         {then}
         return stored",
        header = HEADER_LEN,
        magic = MAGIC.len(),
        version = DATA_VERSION_OFFSET,
        generated = GENERATED_AT_OFFSET,
    ))
}

/// `KEYS[1]`'s `validated_at` set to `ARGV[6]` in place, keeping its expiry, but only if it is still an
/// entry of this format (`ARGV[2]`, the magic, `ARGV[1]` bytes long) computed from data version
/// `ARGV[4]` (at `ARGV[3]`); returns 1 if it marked, 0 otherwise (the key gone or replaced: a plain
/// SETRANGE would create it, zero-padded and without an expiry).
pub static MARK_VALIDATED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "if redis.call('GETRANGE', KEYS[1], 0, ARGV[1] - 1) == ARGV[2]
            and redis.call('GETRANGE', KEYS[1], ARGV[3], ARGV[3] + 7) == ARGV[4] then
           redis.call('SETRANGE', KEYS[1], ARGV[5], ARGV[6])
           return 1
         end
         return 0",
    )
});

const FLAG_PLAIN: u8 = 0;
/// zstd without a dictionary (written by earlier versions; still read).
const FLAG_ZSTD: u8 = 1;
/// zstd with [`DICTIONARY`].
const FLAG_ZSTD_DICTIONARY_1: u8 = 2;
/// Below this, compression's frame overhead outweighs what it saves.
const COMPRESS_MIN_BYTES: usize = 256;
const ZSTD_LEVEL: i32 = 3;
/// Lambda answers at most 6 MB; no bundle may come near it, and a larger declared size is corruption.
pub const MAX_BUNDLE_BYTES: usize = 4 << 20;

/// Trained on bundles of the benchmark dataset (`cargo run --release -p bench -- train-dictionary`):
/// keys, number and timestamp formats recur in every bundle, and one bundle alone is too small for the
/// compressor to learn them.
static DICTIONARY: &[u8] = include_bytes!("bundle.dict");
static ENCODER_DICTIONARY: LazyLock<EncoderDictionary<'static>> =
    LazyLock::new(|| EncoderDictionary::copy(DICTIONARY, ZSTD_LEVEL));
static DECODER_DICTIONARY: LazyLock<DecoderDictionary<'static>> =
    LazyLock::new(|| DecoderDictionary::copy(DICTIONARY));

thread_local! {
    // One (de)compression context per thread, reused: allocating one per entry costs more than the
    // decompression itself.
    static COMPRESSOR: RefCell<Option<Compressor<'static>>> =
        RefCell::new(Compressor::with_prepared_dictionary(&ENCODER_DICTIONARY).ok());
    static DECOMPRESSOR: RefCell<Option<Decompressor<'static>>> =
        RefCell::new(Decompressor::with_prepared_dictionary(&DECODER_DICTIONARY).ok());
}

impl Entry {
    pub fn encode(&self) -> Vec<u8> {
        let json = self.json.as_bytes();
        let compressed = (json.len() >= COMPRESS_MIN_BYTES)
            .then(|| COMPRESSOR.with(|c| c.borrow_mut().as_mut()?.compress(json).ok()))
            .flatten()
            .filter(|c| c.len() < json.len());
        let (flags, payload) = match &compressed {
            Some(c) => (FLAG_ZSTD_DICTIONARY_1, c.as_slice()),
            None => (FLAG_PLAIN, json),
        };
        let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
        out.extend_from_slice(MAGIC);
        out.push(flags);
        out.extend_from_slice(&self.generated_at_ms.to_be_bytes());
        out.extend_from_slice(&self.validated_at_ms.to_be_bytes());
        out.extend_from_slice(&self.data_version.to_be_bytes());
        out.extend_from_slice(&self.day_ends_at_ms.to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    /// `None` for bytes this version cannot read (another format, corruption, a payload that would
    /// decompress past [`MAX_BUNDLE_BYTES`] or is not UTF-8): the caller treats it as a miss.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() < HEADER_LEN || &bytes[..FLAGS_OFFSET] != MAGIC {
            return None;
        }
        let payload = &bytes[HEADER_LEN..];
        let json = match bytes[FLAGS_OFFSET] {
            FLAG_PLAIN => payload.to_vec(),
            FLAG_ZSTD => zstd::bulk::decompress(payload, MAX_BUNDLE_BYTES).ok()?,
            FLAG_ZSTD_DICTIONARY_1 => {
                let size = zstd::zstd_safe::get_frame_content_size(payload).ok()??;
                if size > MAX_BUNDLE_BYTES as u64 {
                    return None;
                }
                DECOMPRESSOR.with(|d| d.borrow_mut().as_mut()?.decompress(payload, size as usize).ok())?
            }
            _ => return None,
        };
        Some(Self {
            generated_at_ms: field(bytes, GENERATED_AT_OFFSET)?,
            validated_at_ms: field(bytes, VALIDATED_AT_OFFSET)?,
            data_version: field(bytes, DATA_VERSION_OFFSET)?,
            day_ends_at_ms: field(bytes, DAY_ENDS_AT_OFFSET)?,
            json: String::from_utf8(json).ok()?,
        })
    }

    /// The order in which entries of one key replace each other: (data version, `generated_at`). A
    /// store of an entry whose fence is less than the stored one's is refused, in Redis and in the
    /// in-memory level alike.
    pub fn fence(&self) -> (i64, i64) {
        (self.data_version, self.generated_at_ms)
    }

    /// The big-endian bytes of `data_version` as they sit in the header, for the revalidation check.
    pub fn data_version_bytes(data_version: i64) -> [u8; 8] {
        data_version.to_be_bytes()
    }
}

fn field(bytes: &[u8], at: usize) -> Option<i64> {
    bytes.get(at..at + 8)?.try_into().ok().map(i64::from_be_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(json: String) -> Entry {
        Entry {
            generated_at_ms: 1_700_000_000_123,
            validated_at_ms: 1_700_000_000_456,
            data_version: 42,
            day_ends_at_ms: 1_700_006_400_000,
            json,
        }
    }

    #[test]
    fn entry_round_trips_small_and_large_payloads() {
        for json in ["{}".to_owned(), format!("[{}]", "\"abc\",".repeat(400) + "1")] {
            let e = entry(json);
            assert_eq!(Entry::decode(&e.encode()), Some(e));
        }
    }

    #[test]
    fn large_payload_is_stored_compressed() {
        let e = entry(format!("[{}]", "{\"status\":\"pending\"},".repeat(200) + "1"));
        assert!(e.encode().len() * 3 < e.json.len());
    }

    #[test]
    fn header_fields_sit_at_their_named_offsets() {
        let bytes = entry("{}".into()).encode();
        assert_eq!(field(&bytes, GENERATED_AT_OFFSET), Some(1_700_000_000_123));
        assert_eq!(field(&bytes, VALIDATED_AT_OFFSET), Some(1_700_000_000_456));
        assert_eq!(
            bytes[DATA_VERSION_OFFSET..DAY_ENDS_AT_OFFSET],
            Entry::data_version_bytes(42)
        );
        assert_eq!(field(&bytes, DAY_ENDS_AT_OFFSET), Some(1_700_006_400_000));
        assert_eq!(&bytes[HEADER_LEN..], b"{}");
    }

    #[test]
    fn entries_without_a_dictionary_are_still_read() {
        let json = format!("[{}]", "{\"status\":\"pending\"},".repeat(50) + "1");
        let mut bytes = entry(String::new()).encode();
        bytes[FLAGS_OFFSET] = FLAG_ZSTD;
        bytes.extend(zstd::bulk::compress(json.as_bytes(), 3).unwrap());
        assert_eq!(Entry::decode(&bytes).unwrap().json, json);
    }

    #[test]
    fn a_payload_that_would_decompress_past_the_bound_is_unreadable() {
        let huge = vec![b' '; MAX_BUNDLE_BYTES + 1];
        for flag in [FLAG_ZSTD, FLAG_ZSTD_DICTIONARY_1] {
            let mut bytes = entry(String::new()).encode();
            bytes[FLAGS_OFFSET] = flag;
            bytes.extend(zstd::bulk::compress(&huge, 3).unwrap());
            assert_eq!(Entry::decode(&bytes), None, "flag {flag}");
        }
    }

    #[test]
    fn foreign_or_non_utf8_bytes_decode_as_nothing() {
        assert_eq!(Entry::decode(b"{\"stats\":{}}"), None);
        assert_eq!(Entry::decode(b"DBC1\x07aaaaaaaabbbbbbbbcccccccc"), None);
        let mut bytes = entry(String::new()).encode();
        bytes.extend_from_slice(&[0xff, 0xfe]);
        assert_eq!(Entry::decode(&bytes), None);
    }
}
