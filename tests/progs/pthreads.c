/* Threads with a mutex, a condition variable and a barrier-like join. */
#include <pthread.h>
#include <stdio.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static long total;
static int started;

static void *worker(void *arg) {
    long n = (long)arg;
    long local = 0;
    for (long i = 1; i <= n * 100000; i++) local += i % 7;
    pthread_mutex_lock(&mu);
    total += local;
    started++;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    return (void *)(local % 1000);
}

int main(void) {
    pthread_t t[8];
    for (long i = 0; i < 8; i++) pthread_create(&t[i], NULL, worker, (void *)(i + 1));
    pthread_mutex_lock(&mu);
    while (started < 8) pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    long rets = 0;
    for (int i = 0; i < 8; i++) {
        void *r;
        pthread_join(t[i], &r);
        rets += (long)r;
    }
    printf("threads=8 total=%ld rets=%ld\n", total, rets);
    return 0;
}
