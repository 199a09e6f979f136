pub mod cgroup;
pub mod container;
pub mod init;
pub mod mounts;
pub mod net;
pub mod reaper;
pub mod session;
pub mod sys;
