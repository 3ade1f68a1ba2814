//! Values of any serde type as messages: encoded with postcard into bytes, sent as `u8`
//! messages, decoded on arrival. What the [farm](crate::farm) and the
//! [pipeline](crate::pipeline) move, so that tasks and items can be image tiles with
//! metadata, strings or enums, not only MPI's plain types.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, ErrorKind, Result};

/// `value` as bytes.
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    postcard::to_allocvec(value).map_err(|e| {
        Error::new(
            ErrorKind::Io,
            format!(
                "could not encode a {} for sending: {e}",
                std::any::type_name::<T>()
            ),
        )
    })
}

/// The value `bytes` encode.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    postcard::from_bytes(bytes).map_err(|e| {
        Error::new(
            ErrorKind::RemoteError,
            format!(
                "a message of {} bytes does not decode as a {}: {e} (do all ranks use the \
                 same types?)",
                bytes.len(),
                std::any::type_name::<T>()
            ),
        )
    })
}

/// A message header of little-endian `u64` words, to which a body is appended.
pub(crate) fn header(words: &[u64]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(8 * words.len() + 64);
    for word in words {
        bytes.extend_from_slice(&word.to_le_bytes());
    }
    bytes
}

/// The `N` header words in front of a message, and the body after them; `RemoteError`
/// (naming `layer`) if the message is shorter than its header.
pub(crate) fn split_header<'b, const N: usize>(
    bytes: &'b [u8],
    layer: &str,
) -> Result<([u64; N], &'b [u8])> {
    if bytes.len() < 8 * N {
        return Err(Error::new(
            ErrorKind::RemoteError,
            format!("{layer}: a message of {} bytes has no header", bytes.len()),
        ));
    }
    let mut words = [0_u64; N];
    for (k, word) in words.iter_mut().enumerate() {
        let mut w = [0; 8];
        w.copy_from_slice(&bytes[8 * k..8 * k + 8]);
        *word = u64::from_le_bytes(w);
    }
    Ok((words, &bytes[8 * N..]))
}
