/* Regain capabilities by creating a user namespace (unshare and clone),
 * then use them: a new mount namespace and a mount. */
#include "attack.h"

static int child(void *arg) {
    (void)arg;
    long r = unshare(CLONE_NEWNS);
    if (r == 0) r = mount("none", "/tmp", "tmpfs", 0, NULL);
    _exit(r == 0 ? 0 : 1);
}

int main(void) {
    protocol_init("userns");
    long r = unshare(CLONE_NEWUSER);
    int eu = r < 0 ? errno : 0;
    info("unshare(CLONE_NEWUSER): %s", ename(eu));
    static char stack[65536];
    int pid = clone(child, stack + sizeof stack, CLONE_NEWUSER | SIGCHLD, NULL);
    int ec = pid < 0 ? errno : 0;
    int used = 0;
    if (pid > 0) {
        int st;
        waitpid(pid, &st, 0);
        used = WIFEXITED(st) && WEXITSTATUS(st) == 0;
    }
    info("clone(CLONE_NEWUSER): %s, mount inside it: %s", ename(ec), used ? "OK" : "failed");
    if (eu == 0 || ec == 0)
        verdict("HARMLESS", "created a user namespace; its capabilities cover only namespaces it owns");
    else
        verdict("BLOCKED", "user namespaces refused (unshare %s, clone %s)", ename(eu), ename(ec));
    return 0;
}
