//! Memory: the memory file that backs every workload page, and the
//! address-space model (VMAs) the kernel keeps for each process. The
//! kernel is the authority: host mappings in the stubs are only a mirror,
//! updated by injected syscalls.

pub mod memfile;
pub mod space;
pub mod usercopy;

pub use memfile::{Chunk, MemoryFile};
pub use space::{AddressSpace, MapRequest, Remap, Vma, VmaName};
