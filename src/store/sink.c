/*
 * sink.c — the hand-off of sink.h.
 *
 * The ring is RING bytes; head and tail count bytes ever written and read
 * (positions are their remainders), so the bytes waiting are head - tail.
 * A record is a header and then the key and value (or, for a big line, a
 * pointer to a heap copy of them), padded to 8 bytes; a record never
 * wraps: when it would pass the ring's end, the producer writes a wrap
 * header there and starts the record at 0.
 *
 * Sleeping without a lost wake-up: a side that is about to sleep sets its
 * flag under the mutex, looks at the other side's counter once more, and
 * waits on its condition; the other side stores its counter first and then
 * reads the flag (all sequentially consistent), and signals under the
 * mutex. So either the sleeper sees the new counter, or the other side
 * sees the flag and its signal comes after the wait began.
 */
#include "store/sink.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/bulk.h"

#define RING ((size_t)4 << 20)
#define WAKE ((size_t)512 << 10)   /* the bytes waiting that wake a sleeping thread */
#define PUBLISH ((size_t)64 << 10) /* the thread says what it read at least this often */
#define BIG (RING / 8)             /* a line longer goes as a heap copy */

enum { REC_LINE, REC_BIG, REC_WRAP };

typedef struct rec_hdr {
    uint16_t klen;
    uint8_t kind; /* REC_* */
    uint8_t unused;
    uint32_t vlen;
} rec_hdr;
_Static_assert(sizeof(rec_hdr) == 8, "a header is 8 bytes");

struct store_sink {
    store_lines_fn bucket_len;
    unsigned char *ring;
    uint64_t phead;              /* the producer's own copy of head */
    _Atomic uint64_t head, tail; /* written by the producer, the thread */
    _Atomic int done;            /* the producer is through (store_sink_finish) */
    _Atomic int failed;          /* the thread ran out of memory */
    _Atomic int producer_sleeping, consumer_sleeping;
    _Atomic size_t bytes;
    pthread_mutex_t mu;
    pthread_cond_t producer_cv, consumer_cv;
    pthread_t thread;
    int running; /* the thread has not been joined */
    yj_memmap *map;
    store_bulk *bulk; /* the map's memory (NULL: malloc's) */
};

static size_t pad8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

static void wake(store_sink *s, pthread_cond_t *cv)
{
    pthread_mutex_lock(&s->mu);
    pthread_cond_signal(cv);
    pthread_mutex_unlock(&s->mu);
}

/* Puts one record's line into the map, or drops it once the map failed. */
static void take(store_sink *s, const rec_hdr *h, const unsigned char *key)
{
    if (!atomic_load_explicit(&s->failed, memory_order_relaxed) &&
        yj_memmap_put(s->map, key, h->klen, h->vlen ? key + h->klen : NULL, h->vlen, 0) != 0)
        atomic_store(&s->failed, 1);
}

/* Reads the record at tail: its size in the ring. */
static size_t consume_one(store_sink *s, uint64_t tail)
{
    size_t pos = (size_t)(tail % RING);
    rec_hdr h;
    memcpy(&h, s->ring + pos, sizeof h);
    if (h.kind == REC_WRAP) return RING - pos;
    if (h.kind == REC_BIG) {
        unsigned char *copy;
        memcpy(&copy, s->ring + pos + sizeof h, sizeof copy);
        take(s, &h, copy);
        free(copy);
        return sizeof h + sizeof copy;
    }
    take(s, &h, s->ring + pos + sizeof h);
    return sizeof h + pad8((size_t)h.klen + h.vlen);
}

static void publish_tail(store_sink *s, uint64_t tail)
{
    atomic_store(&s->tail, tail);
    if (atomic_load(&s->producer_sleeping)) wake(s, &s->producer_cv);
}

static void *sink_main(void *arg)
{
    store_sink *s = arg;
    pthread_setname_np(pthread_self(), "yj-sink");
    uint64_t tail = 0;
    for (;;) {
        uint64_t head = atomic_load(&s->head), said = tail;
        while (tail < head) {
            tail += consume_one(s, tail);
            if (tail - said >= PUBLISH) publish_tail(s, said = tail);
        }
        publish_tail(s, tail);
        atomic_store(&s->bytes, s->bulk ? store_bulk_used(s->bulk) : yj_memmap_bytes(s->map));
        if (atomic_load(&s->done) && tail == atomic_load(&s->head)) break;
        pthread_mutex_lock(&s->mu);
        atomic_store(&s->consumer_sleeping, 1);
        while (!atomic_load(&s->done) && atomic_load(&s->head) - tail < WAKE)
            pthread_cond_wait(&s->consumer_cv, &s->mu);
        atomic_store(&s->consumer_sleeping, 0);
        pthread_mutex_unlock(&s->mu);
    }
    return NULL;
}

static int no_index(const void *key, size_t klen)
{
    (void)key, (void)klen;
    return 0;
}

store_sink *store_sink_new(store_lines_fn bucket_len, int use_bulk)
{
    store_sink *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->bucket_len = bucket_len;
    s->ring = malloc(RING);
    s->map = yj_memmap_new();
    s->bulk = use_bulk ? store_bulk_new(0) : NULL;
    if (!s->ring || !s->map || (use_bulk && !s->bulk)) goto fail;
    yj_memmap_index_only(s->map, no_index); /* nothing looks a line up */
    if (s->bulk) yj_memmap_use_alloc(s->map, store_bulk_alloc, NULL, s->bulk);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->producer_cv, NULL);
    pthread_cond_init(&s->consumer_cv, NULL);
    if (pthread_create(&s->thread, NULL, sink_main, s) != 0) {
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->producer_cv);
        pthread_cond_destroy(&s->consumer_cv);
        goto fail;
    }
    s->running = 1;
    return s;
fail:
    yj_memmap_free(s->map);
    store_bulk_free(s->bulk);
    free(s->ring);
    free(s);
    return NULL;
}

int store_sink_takes(const store_sink *s, const void *key, size_t klen)
{
    return store_lines_is_line(s->bucket_len, key, klen);
}

int store_sink_in_bucket(const store_sink *s, const void *key, size_t klen)
{
    return s->bucket_len(key, klen) != 0;
}

/* Waits until need bytes of the ring are free past the producer's head. */
static void wait_room(store_sink *s, size_t need)
{
    for (int spins = 0; RING - (s->phead - atomic_load(&s->tail)) < need; spins++) {
        if (spins < 64) continue;
        if (atomic_load(&s->consumer_sleeping)) wake(s, &s->consumer_cv);
        pthread_mutex_lock(&s->mu);
        atomic_store(&s->producer_sleeping, 1);
        while (RING - (s->phead - atomic_load(&s->tail)) < need)
            pthread_cond_wait(&s->producer_cv, &s->mu);
        atomic_store(&s->producer_sleeping, 0);
        pthread_mutex_unlock(&s->mu);
    }
}

int store_sink_put(store_sink *s, const void *key, size_t klen, const void *val, size_t vlen)
{
    assert(s->running);
    if (atomic_load_explicit(&s->failed, memory_order_relaxed)) return -1;
    if (klen == 0 || klen > YJ_MEMMAP_KEY_MAX || vlen > YJ_MEMMAP_VAL_MAX) return -1;
    rec_hdr h = {(uint16_t)klen, REC_LINE, 0, (uint32_t)vlen};
    size_t body = klen + vlen;
    unsigned char *copy = NULL;
    if (sizeof h + body > BIG) {
        if (!(copy = malloc(body))) return -1;
        memcpy(copy, key, klen);
        if (vlen) memcpy(copy + klen, val, vlen);
        h.kind = REC_BIG;
    }
    size_t need = sizeof h + (copy ? sizeof copy : pad8(body));
    size_t pos = (size_t)(s->phead % RING);
    if (pos + need > RING) { /* the rest of the ring is skipped, the record starts at 0 */
        wait_room(s, RING - pos + need);
        rec_hdr wrap = {0, REC_WRAP, 0, 0};
        /* (the rest holds it: positions and records are multiples of 8) */
        memcpy(s->ring + pos, &wrap, sizeof wrap);
        s->phead += RING - pos;
        pos = 0;
    } else {
        wait_room(s, need);
    }
    unsigned char *at = s->ring + pos;
    memcpy(at, &h, sizeof h);
    if (copy) {
        memcpy(at + sizeof h, &copy, sizeof copy);
    } else {
        memcpy(at + sizeof h, key, klen);
        if (vlen) memcpy(at + sizeof h + klen, val, vlen);
    }
    s->phead += need;
    atomic_store(&s->head, s->phead);
    if (atomic_load(&s->consumer_sleeping) && s->phead - atomic_load(&s->tail) >= WAKE)
        wake(s, &s->consumer_cv);
    return 0;
}

size_t store_sink_bytes(const store_sink *s)
{
    return atomic_load(&s->bytes);
}

int store_sink_finish(store_sink *s)
{
    if (s->running) {
        atomic_store(&s->done, 1);
        wake(s, &s->consumer_cv);
        pthread_join(s->thread, NULL);
        s->running = 0;
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->producer_cv);
        pthread_cond_destroy(&s->consumer_cv);
    }
    return atomic_load(&s->failed) ? -1 : 0;
}

const yj_memmap *store_sink_map(const store_sink *s)
{
    return s->running ? NULL : s->map;
}

void store_sink_free(store_sink *s)
{
    if (!s) return;
    store_sink_finish(s);
    yj_memmap_free(s->map); /* before the bulk: its entries are the bulk's */
    store_bulk_free(s->bulk);
    free(s->ring);
    free(s);
}
