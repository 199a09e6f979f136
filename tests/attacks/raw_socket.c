/* Raw IP and packet sockets (CAP_NET_RAW is in Docker's default set):
 * spoof or sniff traffic. What they can see is listed by interface. */
#include "attack.h"
#include <net/if.h>
#include <netinet/in.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <arpa/inet.h>

int main(void) {
    protocol_init("raw_socket");
    int raw = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
    int er = raw < 0 ? errno : 0;
    int rawip = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
    int eri = rawip < 0 ? errno : 0;
    int pkt = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
    int ep = pkt < 0 ? errno : 0;
    info("raw icmp: %s, raw ip: %s, packet: %s", ename(er), ename(eri), ename(ep));
    if (raw < 0 && rawip < 0 && pkt < 0) {
        verdict("BLOCKED", "raw and packet sockets refused (%s/%s)", ename(er), ename(ep));
        return 0;
    }
    /* Which interfaces are there to sniff or spoof on? */
    struct if_nameindex *ifs = if_nameindex(), *i;
    int foreign = 0;
    char names[256] = "";
    for (i = ifs; i && i->if_index; i++) {
        if (strcmp(i->if_name, "lo")) foreign++;
        strncat(names, i->if_name, sizeof names - strlen(names) - 2);
        strcat(names, " ");
    }
    info("interfaces: %s", names);
    if (foreign)
        verdict("ESCAPED", "raw sockets on non-loopback interfaces");
    else
        verdict("HARMLESS", "raw sockets work but see only the container's own loopback");
    return 0;
}
