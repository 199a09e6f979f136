/* Egress attempts from the sandbox: for each target "tcp|udp ADDR PORT"
 * (three arguments per target) a TCP connect or a UDP sendto, and one
 * line in OUT: "<proto> <addr> <port> ok" or "... errno <n>". Then
 * "done" and 30 s of holding on, for the host to look.
 *
 *   egress_probe OUT tcp 10.0.0.1 80 udp 169.254.169.254 53 ... */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2 || (argc - 2) % 3 != 0)
        return 2;
    FILE *out = fopen(argv[1], "a");
    if (!out)
        return 3;
    for (int i = 2; i + 2 < argc; i += 3) {
        int tcp = strcmp(argv[i], "tcp") == 0;
        struct sockaddr_storage ss = {0};
        socklen_t len;
        struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
        int port = atoi(argv[i + 2]);
        if (inet_pton(AF_INET, argv[i + 1], &a4->sin_addr) == 1) {
            a4->sin_family = AF_INET;
            a4->sin_port = htons(port);
            len = sizeof *a4;
        } else if (inet_pton(AF_INET6, argv[i + 1], &a6->sin6_addr) == 1) {
            a6->sin6_family = AF_INET6;
            a6->sin6_port = htons(port);
            len = sizeof *a6;
        } else {
            return 4;
        }
        int s = socket(ss.ss_family, tcp ? SOCK_STREAM : SOCK_DGRAM, 0);
        int r;
        if (s < 0)
            r = -1;
        else if (tcp)
            r = connect(s, (struct sockaddr *)&ss, len);
        else
            r = sendto(s, "q", 1, 0, (struct sockaddr *)&ss, len) == 1 ? 0 : -1;
        if (r == 0)
            fprintf(out, "%s %s %s ok\n", argv[i], argv[i + 1], argv[i + 2]);
        else
            fprintf(out, "%s %s %s errno %d\n", argv[i], argv[i + 1], argv[i + 2], errno);
        fflush(out);
        if (s >= 0)
            close(s);
    }
    fprintf(out, "done\n");
    fclose(out);
    sleep(30);
    return 0;
}
