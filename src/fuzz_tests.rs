//! Property tests over arbitrary and damaged bytes for everything the library reads back from
//! files: `.npy` headers, checkpoint manifests, timing reports. Whatever the bytes, the readers
//! return `Err` — no panic — and never allocate more than the input could justify (a file
//! cannot make the library reserve memory for data it does not contain).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use proptest::prelude::*;

use crate::array::fuzzing::{parse_manifest, read_npy_header};
use crate::timing::Report;

/// The system allocator, noting the largest single allocation each thread asks for.
struct Tracking;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to the system allocator; the bookkeeping touches
// only a thread-local `Cell` of a `const` initialiser, which never allocates.
unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.with(|l| l.set(l.get().max(layout.size())));
        // SAFETY: the caller's contract for `alloc` is passed on unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above, for `dealloc`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.with(|l| l.set(l.get().max(new_size)));
        // SAFETY: as above, for `realloc`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Tracking = Tracking;

/// Runs `f` and returns the largest single allocation it made on this thread.
fn largest_allocation(f: impl FnOnce()) -> usize {
    LARGEST.with(|l| l.set(0));
    f();
    LARGEST.with(Cell::get)
}

/// A valid version-3 manifest for 2 ranks, as a save writes it.
fn valid_manifest() -> String {
    r#"{
  "format": "spmd-distarray",
  "version": 3,
  "dtype": "<f8",
  "shape": [7, 5, 3],
  "split": [{"axis": 0, "distribution": "block-cyclic", "block_size": 2, "ranks": 2}],
  "ranks": 2,
  "pieces": ["piece-00000.npy", "piece-00001.npy"],
  "crc32": [12345, 67890]
}"#
    .to_owned()
}

fn valid_npy() -> Vec<u8> {
    let dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (4, 5, 3), }";
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((dict.len() as u16).to_le_bytes());
    out.extend(dict.as_bytes());
    out.extend([0_u8; 4 * 5 * 3 * 8]);
    out
}

/// `bytes` with a few positions overwritten and possibly cut short.
fn damaged(base: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let len = base.len();
    (prop::collection::vec((0..len, any::<u8>()), 0..8), 0..=len).prop_map(move |(flips, cut)| {
        let mut bytes = base.clone();
        for (at, value) in flips {
            bytes[at] = value;
        }
        bytes.truncate(cut);
        bytes
    })
}

/// What a reader may allocate for `input` bytes: its own copies and parse structures, a small
/// multiple of the input, plus a fixed amount.
fn allowance(input: usize) -> usize {
    8 * input + 4096
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn npy_headers_from_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let used = largest_allocation(|| {
            let _ = read_npy_header(&bytes);
        });
        prop_assert!(used <= allowance(bytes.len()), "{used} bytes for {} input", bytes.len());
    }

    #[test]
    fn npy_headers_damaged(bytes in damaged(valid_npy())) {
        let used = largest_allocation(|| {
            if let Ok(header) = read_npy_header(&bytes) {
                // A header that parses still cannot claim more than it describes.
                let _ = header.file_size(8);
            }
        });
        prop_assert!(used <= allowance(bytes.len()), "{used} bytes for {} input", bytes.len());
    }

    #[test]
    fn manifests_from_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let used = largest_allocation(|| {
            let _ = parse_manifest(&bytes);
        });
        prop_assert!(used <= allowance(bytes.len()), "{used} bytes for {} input", bytes.len());
    }

    #[test]
    fn manifests_damaged(bytes in damaged(valid_manifest().into_bytes())) {
        let used = largest_allocation(|| {
            let _ = parse_manifest(&bytes);
        });
        prop_assert!(used <= allowance(bytes.len()), "{used} bytes for {} input", bytes.len());
    }

    #[test]
    fn manifests_with_any_numbers(
        rows in any::<u64>(),
        block in any::<u64>(),
        ranks in any::<u64>(),
        axis in 0_u64..5,
    ) {
        let text = valid_manifest()
            .replace("[7, 5, 3]", &format!("[{rows}, 5, 3]"))
            .replace("\"block_size\": 2", &format!("\"block_size\": {block}"))
            .replace("\"ranks\": 2}", &format!("\"ranks\": {ranks}}}"))
            .replace("\"axis\": 0", &format!("\"axis\": {axis}"));
        let used = largest_allocation(|| {
            let _ = parse_manifest(text.as_bytes());
        });
        prop_assert!(used <= allowance(text.len()), "{used} bytes for {text}");
    }

    #[test]
    fn reports_from_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let text = String::from_utf8_lossy(&bytes);
        let used = largest_allocation(|| {
            let _ = Report::from_json(&text);
        });
        prop_assert!(used <= allowance(bytes.len()), "{used} bytes for {} input", bytes.len());
    }
}

#[test]
fn the_valid_inputs_parse() {
    assert!(read_npy_header(&valid_npy()).is_ok());
    assert!(parse_manifest(valid_manifest().as_bytes()).is_ok());
    // And what the readers refuse, they refuse with a reason.
    let e = parse_manifest(valid_manifest().replace("<f8", "<i8").as_bytes()).unwrap_err();
    assert!(e.message().contains("elements <i8"), "{e}");
    let absurd = valid_manifest().replace("\"ranks\": 2}", "\"ranks\": 0}");
    assert!(parse_manifest(absurd.as_bytes()).is_err());
}
