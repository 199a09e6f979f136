//! Memory: the memory file that backs every workload page, and the
//! address-space model (VMAs) the kernel keeps for each process. The
//! kernel is the authority: host mappings in the stubs are only a mirror,
//! updated by injected syscalls.

pub mod filemem;
pub mod memfile;
pub mod rangeset;
pub mod safecopy;
pub mod space;
pub mod usercopy;

pub use filemem::FileMem;
pub use memfile::{Chunk, MemoryFile};
pub use space::{AddressSpace, Backing, MapRequest, Remap, UsertrapTable, Vma, VmaName};
