//! System V IPC and POSIX message queue syscalls (the objects are in
//! `crate::ipc`).

use super::{Handler, Status};
use crate::ipc::{mqueue, msg, sem, shm};

pub fn table() -> Vec<(&'static str, Handler, Status, &'static str)> {
    use Status::*;
    vec![
        (
            "shmget",
            shm::shmget,
            Partial,
            "SHM_HUGETLB refused (EINVAL)",
        ),
        ("shmat", shm::shmat, Full, ""),
        ("shmdt", shm::shmdt, Full, ""),
        ("shmctl", shm::shmctl, Full, ""),
        ("semget", sem::semget, Full, ""),
        ("semop", sem::semop, Full, ""),
        ("semtimedop", sem::semtimedop, Full, ""),
        ("semctl", sem::semctl, Full, ""),
        ("msgget", msg::msgget, Full, ""),
        ("msgsnd", msg::msgsnd, Full, ""),
        ("msgrcv", msg::msgrcv, Full, ""),
        ("msgctl", msg::msgctl, Full, ""),
        ("mq_open", mqueue::mq_open, Full, ""),
        ("mq_unlink", mqueue::mq_unlink, Full, ""),
        ("mq_timedsend", mqueue::mq_timedsend, Full, ""),
        ("mq_timedreceive", mqueue::mq_timedreceive, Full, ""),
        (
            "mq_notify",
            mqueue::mq_notify,
            Partial,
            "SIGEV_SIGNAL and SIGEV_NONE; SIGEV_THREAD (a netlink socket) is EINVAL",
        ),
        ("mq_getsetattr", mqueue::mq_getsetattr, Full, ""),
    ]
}
