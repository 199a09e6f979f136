/* Reach services on the host's loopback from a container with its own
 * network namespace: a TCP listener on 127.0.0.1 and an abstract unix
 * socket (abstract names are per network namespace). */
#include "attack.h"
#include <netinet/in.h>
#include <arpa/inet.h>

int main(void) {
    protocol_init("loopback");
    int port = atoi(param("ATTACK_PORT"));
    const char *abstract = param("ATTACK_ABSTRACT");
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int r = connect(s, (struct sockaddr *)&a, sizeof a);
    int et = r < 0 ? errno : 0;
    info("connect 127.0.0.1:%d: %s", port, ename(et));
    close(s);
    int u = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un ua = {.sun_family = AF_UNIX};
    size_t len = strlen(abstract);
    memcpy(ua.sun_path + 1, abstract, len);
    int r2 = connect(u, (struct sockaddr *)&ua, offsetof(struct sockaddr_un, sun_path) + 1 + len);
    int eu = r2 < 0 ? errno : 0;
    info("connect @%s: %s", abstract, ename(eu));
    if (!et || !eu)
        verdict("ESCAPED", "connected to a host loopback service (tcp %s, abstract unix %s)", ename(et), ename(eu));
    else
        verdict("BLOCKED", "host loopback unreachable (tcp %s, abstract unix %s)", ename(et), ename(eu));
    return 0;
}
