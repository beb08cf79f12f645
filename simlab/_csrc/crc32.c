/*
 * CRC32 (IEEE 802.3, as zlib.crc32): the OKX book checksum (Book.checksum in book.c) and
 * simlab._native.crc32_signed.
 */
#include "native.h"

/* Slice-by-8: eight table lookups per 8 input bytes instead of one per byte (the checksum
 * runs on every book message; a top-25 string is ~1.2 KB). crc_table[0] is the classic
 * table; crc_table[k][i] advances crc_table[k-1][i] by one more zero byte. */
static uint32_t crc_table[8][256];

void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int j = 0; j < 8; j++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int k = 1; k < 8; k++)
            crc_table[k][i] = (crc_table[k - 1][i] >> 8) ^ crc_table[0][crc_table[k - 1][i] & 0xFF];
}

uint32_t crc32_buf(const char *buf, size_t n) {
    const uint8_t *p = (const uint8_t *)buf;
    uint32_t c = 0xFFFFFFFFu;
    while (n >= 8) {
        /* little-endian byte order, assembled explicitly so the result is the same on any host */
        uint32_t lo = c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                           (uint32_t)p[3] << 24);
        uint32_t hi = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 |
                      (uint32_t)p[7] << 24;
        c = crc_table[7][lo & 0xFF] ^ crc_table[6][(lo >> 8) & 0xFF] ^
            crc_table[5][(lo >> 16) & 0xFF] ^ crc_table[4][lo >> 24] ^
            crc_table[3][hi & 0xFF] ^ crc_table[2][(hi >> 8) & 0xFF] ^
            crc_table[1][(hi >> 16) & 0xFF] ^ crc_table[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n--) c = crc_table[0][(c ^ *p++) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}


static PyObject *py_crc32_signed(PyObject *mod, PyObject *arg) {
    Py_buffer b;
    if (PyObject_GetBuffer(arg, &b, PyBUF_SIMPLE) < 0) return NULL;
    uint32_t c = crc32_buf(b.buf, (size_t)b.len);
    PyBuffer_Release(&b);
    return PyLong_FromLong((int32_t)c);
}

static PyMethodDef crc32_methods[] = {
    {"crc32_signed", (PyCFunction)py_crc32_signed, METH_O, "CRC32 of bytes as signed int32"},
    {NULL}};

int crc32_add(PyObject *m) { return PyModule_AddFunctions(m, crc32_methods); }
