/* Sockets and epoll while migrated: after "waiting" the test moves it to
 * node2; then, at home through forwarded calls, it serves itself over
 * loopback TCP and UDP and prints what it sees (nothing that differs from
 * run to run: no port numbers). Exercises the socket-address buffers
 * behind a socklen_t (accept, getsockname, getpeername, getsockopt,
 * recvfrom), epoll_wait's event array, getgroups' list, and sendmsg/
 * recvmsg with a name, two buffers and a descriptor passed (SCM_RIGHTS),
 * and sendmmsg/recvmmsg of two datagrams. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

int main(void)
{
    printf("pid %d\nwaiting\n", getpid());
    fflush(stdout);
    time_t start = time(0);
    while (time(0) - start < 2)
        ;
    int srv = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (srv < 0 || bind(srv, (struct sockaddr *)&a, sizeof a) < 0 || listen(srv, 1) < 0)
        return 1;
    socklen_t len = sizeof a;
    if (getsockname(srv, (struct sockaddr *)&a, &len) < 0)
        return 2;
    printf("bound %s len %u port %s\n", inet_ntoa(a.sin_addr), len, a.sin_port ? "set" : "zero");
    int cli = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(cli, (struct sockaddr *)&a, sizeof a) < 0)
        return 3;
    struct sockaddr_in peer;
    len = sizeof peer;
    int conn = accept(srv, (struct sockaddr *)&peer, &len);
    printf("accepted from %s len %u\n", inet_ntoa(peer.sin_addr), len);
    struct sockaddr_in p2;
    len = sizeof p2;
    getpeername(cli, (struct sockaddr *)&p2, &len);
    printf("peer port matches %d\n", p2.sin_port == a.sin_port);
    int err = -1;
    len = sizeof err;
    getsockopt(conn, SOL_SOCKET, SO_ERROR, &err, &len);
    printf("so_error %d len %u\n", err, len);

    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0x1234};
    epoll_ctl(ep, EPOLL_CTL_ADD, conn, &ev);
    struct epoll_event got[4];
    int n0 = epoll_wait(ep, got, 4, 0);
    if (write(cli, "hello", 5) != 5)
        return 4;
    int n = epoll_wait(ep, got, 4, 1000);
    printf("epoll %d then %d: events %x data %llx\n", n0, n, got[0].events,
           (unsigned long long)got[0].data.u64);
    char buf[16] = {0};
    printf("read %zd %s\n", read(conn, buf, sizeof buf - 1), buf);

    int u1 = socket(AF_INET, SOCK_DGRAM, 0), u2 = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in ua = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(u1, (struct sockaddr *)&ua, sizeof ua);
    len = sizeof ua;
    getsockname(u1, (struct sockaddr *)&ua, &len);
    sendto(u2, "datagram", 8, 0, (struct sockaddr *)&ua, sizeof ua);
    struct sockaddr_in from;
    len = sizeof from;
    memset(buf, 0, sizeof buf);
    ssize_t r = recvfrom(u1, buf, sizeof buf - 1, 0, (struct sockaddr *)&from, &len);
    printf("recvfrom %zd %s from %s len %u\n", r, buf, inet_ntoa(from.sin_addr), len);

    /* sendmsg/recvmsg over a socketpair, passing a descriptor along. */
    int sv[2];
    socketpair(AF_UNIX, SOCK_DGRAM, 0, sv);
    int f = open("/tmp/mosaic-sockets-scm", O_CREAT | O_RDWR | O_TRUNC, 0644);
    if (f < 0 || write(f, "passed along\n", 13) != 13)
        return 5;
    lseek(f, 0, SEEK_SET);
    char part1[] = "two ", part2[] = "parts";
    struct iovec out[2] = {{part1, 4}, {part2, 5}};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } c = {0};
    struct msghdr m = {.msg_iov = out, .msg_iovlen = 2, .msg_control = c.buf, .msg_controllen = sizeof c.buf};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &f, sizeof f);
    printf("sendmsg %zd\n", sendmsg(sv[0], &m, 0));
    char in1[5] = {0}, in2[16] = {0};
    struct iovec in[2] = {{in1, 4}, {in2, sizeof in2 - 1}};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } rc = {0};
    struct sockaddr_storage from_addr;
    struct msghdr rm = {.msg_name = &from_addr, .msg_namelen = sizeof from_addr, .msg_iov = in,
                       .msg_iovlen = 2, .msg_control = rc.buf, .msg_controllen = sizeof rc.buf};
    ssize_t rgot = recvmsg(sv[1], &rm, 0);
    struct cmsghdr *rcm = CMSG_FIRSTHDR(&rm);
    int passed = -1;
    if (rcm && rcm->cmsg_type == SCM_RIGHTS)
        memcpy(&passed, CMSG_DATA(rcm), sizeof passed);
    memset(buf, 0, sizeof buf);
    ssize_t pr = passed >= 0 ? read(passed, buf, sizeof buf - 1) : -1;
    printf("recvmsg %zd '%s|%s' controllen %zu flags %d passed fd reads %zd %s", rgot, in1, in2,
           (size_t)rm.msg_controllen, rm.msg_flags, pr, buf);
    unlink("/tmp/mosaic-sockets-scm");

    /* sendmmsg/recvmmsg: two datagrams at once; three slots to receive
     * in, MSG_WAITFORONE (the third finds none and the call returns 2). */
    struct mmsghdr mm[2];
    struct iovec mi[2] = {{"one", 3}, {"second", 6}};
    memset(mm, 0, sizeof mm);
    for (int i = 0; i < 2; i++) {
        mm[i].msg_hdr.msg_iov = &mi[i];
        mm[i].msg_hdr.msg_iovlen = 1;
        mm[i].msg_hdr.msg_name = &ua;
        mm[i].msg_hdr.msg_namelen = sizeof ua;
    }
    int sent = sendmmsg(u2, mm, 2, 0);
    char rb[3][16];
    memset(rb, 0, sizeof rb);
    struct iovec ri[3] = {{rb[0], 15}, {rb[1], 15}, {rb[2], 15}};
    struct mmsghdr rmm[3];
    memset(rmm, 0, sizeof rmm);
    for (int i = 0; i < 3; i++) {
        rmm[i].msg_hdr.msg_iov = &ri[i];
        rmm[i].msg_hdr.msg_iovlen = 1;
    }
    int mgot = recvmmsg(u1, rmm, 3, MSG_WAITFORONE, NULL);
    printf("sendmmsg %d (%u %u) recvmmsg %d: %s %u, %s %u\n", sent, mm[0].msg_len, mm[1].msg_len,
           mgot, rb[0], rmm[0].msg_len, rb[1], rmm[1].msg_len);

    gid_t groups[64];
    int ng = getgroups(64, groups);
    printf("groups %d first %d\n", ng, ng > 0 ? (int)groups[0] : -1);
    return 0;
}
