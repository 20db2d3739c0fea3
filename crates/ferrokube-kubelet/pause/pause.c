/*
 * ferrokube's sandbox ("pause") process: PID 1 of every pod sandbox. It holds the
 * pod's namespaces open, reaps any child that is re-parented to it, and exits
 * cleanly on SIGTERM or SIGINT. Built static by build.rs and embedded in the agent,
 * which makes the node's sandbox image from it at start (src/pause.rs).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t stop_requested;

static void on_stop(int sig) {
    (void)sig;
    stop_requested = 1;
}

static void on_child(int sig) {
    (void)sig;
    int saved = errno;
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
    errno = saved;
}

static int install(int sig, void (*handler)(int)) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    return sigaction(sig, &sa, NULL);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "-v") == 0) {
        puts("ferrokube-pause 0.1");
        return 0;
    }
    if (getpid() != 1) {
        fputs("ferrokube-pause: not PID 1, children may not be reaped\n", stderr);
    }
    if (install(SIGTERM, on_stop) || install(SIGINT, on_stop) || install(SIGCHLD, on_child)) {
        perror("ferrokube-pause: sigaction");
        return 1;
    }
    while (!stop_requested) {
        pause();
    }
    return 0;
}
