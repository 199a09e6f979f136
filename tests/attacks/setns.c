/* Join other namespaces: those of /proc/1 and of every process visible,
 * through setns on /proc/<pid>/ns/<type>. Prints the namespaces it ends
 * up in, which the host compares with its own. */
#include "attack.h"

int main(void) {
    protocol_init("setns");
    const char *types[] = {"mnt", "net", "pid", "uts", "ipc", "cgroup", "user", "time"};
    int joined = 0;
    char errs[256] = "";
    DIR *d = opendir("/proc");
    struct dirent *de;
    int pids[64], np = 0;
    pids[np++] = 1;
    while (d && (de = readdir(d)) && np < 64) {
        int pid = atoi(de->d_name);
        if (pid > 1 && pid != getpid()) pids[np++] = pid;
    }
    if (d) closedir(d);
    for (int i = 0; i < np; i++) {
        for (unsigned t = 0; t < sizeof types / sizeof *types; t++) {
            char p[64], mine[64], theirs[64];
            snprintf(p, sizeof p, "/proc/%d/ns/%s", pids[i], types[t]);
            int fd = open(p, O_RDONLY | O_CLOEXEC);
            if (fd < 0) {
                if (i == 0) info("open %s: %s", p, ename(errno));
                if (!strstr(errs, ename(errno)) && strlen(errs) < 200) { if (*errs) strcat(errs, "/"); strcat(errs, ename(errno)); }
                continue;
            }
            long r = setns(fd, 0);
            int e = r < 0 ? errno : 0;
            close(fd);
            if (i == 0) info("setns %s: %s", p, ename(e));
            if (!strstr(errs, ename(e))) { if (*errs) strcat(errs, "/"); strcat(errs, ename(e)); }
            if (e == 0) joined++;
            (void)mine; (void)theirs;
        }
    }
    for (unsigned t = 0; t < sizeof types / sizeof *types; t++) {
        char p[64], link[128] = "";
        snprintf(p, sizeof p, "/proc/self/ns/%s", types[t]);
        readlink(p, link, sizeof link - 1);
        printf("INFO ns %s %s\n", types[t], link);
    }
    fflush(stdout);
    if (joined)
        verdict("HARMLESS", "setns works, but only namespaces the container already has are visible");
    else
        verdict("BLOCKED", "setns refused (%s)", errs);
    return 0;
}
