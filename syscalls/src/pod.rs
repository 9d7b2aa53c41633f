//! Plain-old-data: ABI structs that may be copied to and from guest memory as bytes.

/// A type whose every bit pattern is valid and which has no padding bytes, so it can be
/// viewed as bytes and built from bytes.
///
/// # Safety
/// Implement only for `#[repr(C)]` types made of integers (or arrays of them) with every
/// padding byte spelled out as an explicit field.
pub unsafe trait Pod: Copy + Send + Sync + 'static {
    /// The value's bytes, in the guest's (little-endian) layout.
    fn as_bytes(&self) -> &[u8] {
        // SAFETY: `Pod` types have no padding, so every byte of `*self` is initialised;
        // the slice borrows `self` for its lifetime.
        unsafe { core::slice::from_raw_parts((self as *const Self).cast::<u8>(), core::mem::size_of::<Self>()) }
    }

    /// Reads a value from the first `size_of::<Self>()` bytes of `bytes`.
    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.len() < core::mem::size_of::<Self>() {
            return None;
        }
        // SAFETY: the length was checked above; any bit pattern is a valid `Self`, and
        // `read_unaligned` tolerates the slice's alignment.
        Some(unsafe { core::ptr::read_unaligned(bytes.as_ptr().cast::<Self>()) })
    }

    /// An all-zero value.
    fn zeroed() -> Self {
        // SAFETY: all-zero bytes are a valid `Self` for a `Pod` type.
        unsafe { core::mem::zeroed() }
    }
}

macro_rules! pod {
    ($($t:ty),* $(,)?) => { $(
        // SAFETY: a primitive integer or a `#[repr(C)]` struct of integers without implicit
        // padding (checked by the size assertions in `types`).
        unsafe impl Pod for $t {}
    )* };
}
pub(crate) use pod;

pod!(u8, u16, u32, u64, i8, i16, i32, i64, usize, isize);
// SAFETY: an array of `Pod` values has no padding between elements.
unsafe impl<T: Pod, const N: usize> Pod for [T; N] {}
