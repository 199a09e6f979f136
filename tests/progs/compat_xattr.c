/* The l*xattr calls name a symlink itself, never its target: on a
 * dangling symlink they answer for the link (llistxattr: no attributes,
 * lgetxattr: ENODATA), where the following calls fail with ENOENT.
 * CPython's shutil.copytree(symlinks=True) lists a copied link's
 * attributes this way. Compared line by line with the host. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

static void show(const char *what, long r) {
    if (r < 0) printf("%s: %s\n", what, strerrorname_np(errno));
    else printf("%s: ok(%ld)\n", what, r);
}

int main(void) {
    const char *link = "/tmp/xattr-dangling";
    unlink(link);
    if (symlink("/tmp/no-such-target", link)) {
        perror("symlink");
        return 1;
    }
    char buf[256];
    show("llistxattr of a dangling link", llistxattr(link, buf, sizeof buf));
    show("listxattr of a dangling link", listxattr(link, buf, sizeof buf));
    show("lgetxattr of a dangling link", lgetxattr(link, "user.x", buf, sizeof buf));
    show("getxattr of a dangling link", getxattr(link, "user.x", buf, sizeof buf));
    show("llistxattr of a missing path", llistxattr("/tmp/none/x", buf, sizeof buf));
    unlink(link);
    return 0;
}
