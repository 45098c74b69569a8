/*
 * skiff's pod sandbox process: holds a pod's namespaces open, reaps the
 * zombies it inherits as PID 1, and exits cleanly on SIGINT or SIGTERM.
 * Built statically by scripts/build-images.sh.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_terminate(int sig)
{
    (void)sig;
    _exit(0);
}

static void on_child(int sig)
{
    (void)sig;
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
}

int main(int argc, char **argv)
{
    struct sigaction sa;

    if (argc > 1 && strcmp(argv[1], "-v") == 0) {
        puts("skiff-pause 3.10");
        return 0;
    }
    if (getpid() != 1) {
        fprintf(stderr, "warning: pause should be PID 1 of its pod\n");
    }

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_terminate;
    if (sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGTERM, &sa, NULL) < 0) {
        return 1;
    }
    sa.sa_handler = on_child;
    sa.sa_flags = SA_NOCLDSTOP;
    if (sigaction(SIGCHLD, &sa, NULL) < 0) {
        return 2;
    }
    for (;;) {
        pause();
    }
}
