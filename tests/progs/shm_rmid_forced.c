// kernel.shm_rmid_forced: with it set, a segment nobody is attached to
// goes when the process that created it exits; without, it stays.
// Prints "kept" or "removed" for each setting.
#include <stdio.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <unistd.h>

static void set_forced(int on) {
    FILE *f = fopen("/proc/sys/kernel/shm_rmid_forced", "w");
    if (!f || fprintf(f, "%d\n", on) < 0 || fclose(f) != 0) perror("shm_rmid_forced");
}

static const char *after_creator_exits(void) {
    int fd[2];
    pipe(fd);
    if (fork() == 0) {
        int id = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
        write(fd[1], &id, sizeof id);
        _exit(0);
    }
    int id;
    read(fd[0], &id, sizeof id);
    wait(0);
    struct shmid_ds ds;
    if (shmctl(id, IPC_STAT, &ds) == 0) {
        shmctl(id, IPC_RMID, 0);
        return "kept";
    }
    return "removed";
}

int main(void) {
    set_forced(0);
    printf("shm_rmid_forced=0: %s\n", after_creator_exits());
    set_forced(1);
    printf("shm_rmid_forced=1: %s\n", after_creator_exits());
    set_forced(0);
    return 0;
}
