/*
 * Exact decimals and level spans, shared by the book (book.c) and the scanner (scanner.c).
 *
 * Both parse every price and size with parse_dec, in their hot loops. The helpers are static
 * here, as they were when the module was one file, so that the compiler treats each call
 * exactly as before (same inlining): written once, compiled into the two files that use them.
 */
#ifndef SIMLAB_LEVELS_H
#define SIMLAB_LEVELS_H

#include "native.h"

#define MAXS 32            /* longest price/size string kept, including the NUL */
#define FRAC_DIGITS 18

/* ----------------------------------------------------------------------------------------
 * Exact decimals
 * ------------------------------------------------------------------------------------- */

typedef struct {
    int64_t ip;   /* integer part */
    int64_t fr;   /* fraction * 1e18 */
} Key;

static const int64_t POW10[19] = {
    1LL, 10LL, 100LL, 1000LL, 10000LL, 100000LL, 1000000LL, 10000000LL, 100000000LL,
    1000000000LL, 10000000000LL, 100000000000LL, 1000000000000LL, 10000000000000LL,
    100000000000000LL, 1000000000000000LL, 10000000000000000LL, 100000000000000000LL,
    1000000000000000000LL};

static inline int key_cmp(const Key *a, const Key *b) {
    if (a->ip != b->ip) return a->ip < b->ip ? -1 : 1;
    if (a->fr != b->fr) return a->fr < b->fr ? -1 : 1;
    return 0;
}

/* Parse the strict grammar digits+ ('.' digits+)?, at most 18 digits on each side and
 * MAXS-1 characters in all. Returns 0 on success, -1 when the string is not of that form. */
static int parse_dec(const char *s, Py_ssize_t n, Key *k, int *is_zero) {
    Py_ssize_t i = 0;
    int64_t ip = 0, fr = 0;
    int nz = 0;
    if (n <= 0 || n >= MAXS) return -1;
    while (i < n && s[i] >= '0' && s[i] <= '9') {
        if (i >= 18) return -1;
        ip = ip * 10 + (s[i] - '0');
        nz |= s[i] != '0';
        i++;
    }
    if (i == 0) return -1;
    if (i < n) {
        Py_ssize_t j, nd;
        if (s[i] != '.') return -1;
        i++;
        if (i == n) return -1;
        nd = n - i;
        if (nd > FRAC_DIGITS) return -1;
        for (j = i; j < n; j++) {
            if (s[j] < '0' || s[j] > '9') return -1;
            fr = fr * 10 + (s[j] - '0');
            nz |= s[j] != '0';
        }
        fr *= POW10[FRAC_DIGITS - nd];
    }
    k->ip = ip;
    k->fr = fr;
    *is_zero = !nz;
    return 0;
}

static int parse_count(const char *s, Py_ssize_t n, int64_t *out) {
    int64_t v = 0;
    Py_ssize_t i;
    if (n <= 0 || n > 18) return -1;
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* ----------------------------------------------------------------------------------------
 * Level spans: one parsed wire level, pointing into a frame or a Python string
 * ------------------------------------------------------------------------------------- */

typedef struct {
    Key key;
    int64_t count;
    const char *px;
    const char *sz;
    uint8_t pxlen, szlen, zero, has_count;
    /* offsets of the (up to 4) wire elements, to rebuild the Python list on demand */
    uint32_t off[4];
    uint8_t len[4];
    uint8_t nelem;
} Span;


/* ----------------------------------------------------------------------------------------
 * Scanned OKX book messages
 * ------------------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    PyObject *frame;      /* bytes or str owning the memory the spans point into */
    const char *base;
    PyObject *channel, *inst_id, *action, *seq_id, *prev_seq_id, *checksum;
    long long ts;
    Span *spans;          /* bids then asks */
    Py_ssize_t nbids, nasks;
} ScannedObject;

typedef struct {
    PyObject_HEAD
    ScannedObject *msg;
    int ask;
} ViewObject;

/* The LevelsView type (scanner.c): the book applies a view's spans without copying them. */
SL_HIDDEN extern PyTypeObject ViewType;

#endif /* SIMLAB_LEVELS_H */
