// Creates one System V object of each kind, then runs `ipcs` (which reads
// /proc/sysvipc) and `ipcs -l` (the limits in /proc/sys), so their output
// can be compared with a native run.
#include <stdio.h>
#include <stdlib.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>

int main(void) {
    int shm = shmget(0x5eed, 4096, IPC_CREAT | 0640);
    void *p = shmat(shm, 0, 0);
    int sem = semget(0x5eee, 3, IPC_CREAT | 0600);
    int msg = msgget(0x5eef, IPC_CREAT | 0666);
    struct {
        long t;
        char s[8];
    } m = {1, "hello"};
    msgsnd(msg, &m, 6, 0);
    fflush(stdout);
    int r = system("ipcs && ipcs -l");
    shmdt(p);
    shmctl(shm, IPC_RMID, 0);
    semctl(sem, 0, IPC_RMID);
    msgctl(msg, IPC_RMID, 0);
    return r;
}
