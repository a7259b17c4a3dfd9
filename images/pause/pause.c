/* The pod sandbox process: holds the pod's namespaces open until it is told to stop.
 * As PID 1 of a pod with a shared process namespace it also reaps orphaned children. */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int sig) { _exit(128 + sig); }

static void reap(int sig) {
    (void)sig;
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
}

int main(void) {
    struct sigaction stop_action = {.sa_handler = stop};
    struct sigaction reap_action = {.sa_handler = reap, .sa_flags = SA_NOCLDSTOP};
    if (sigaction(SIGINT, &stop_action, NULL) || sigaction(SIGTERM, &stop_action, NULL) ||
        sigaction(SIGCHLD, &reap_action, NULL))
        return EXIT_FAILURE;
    for (;;)
        pause();
}
