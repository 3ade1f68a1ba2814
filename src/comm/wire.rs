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
