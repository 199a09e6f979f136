// Calls getppid() (glibc's `mov $nr,%eax; syscall` site) N times, then
// says whether this process has patched a syscall site (the trampoline
// table appears in its maps as [usertrap]).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 1;
    for (int i = 0; i < n; i++) getppid();
    FILE *m = fopen("/proc/self/maps", "r");
    char line[512];
    int patched = 0;
    while (m && fgets(line, sizeof line, m))
        if (strstr(line, "[usertrap]")) patched = 1;
    printf("%d calls: %s\n", n, patched ? "patched" : "not patched");
    return 0;
}
