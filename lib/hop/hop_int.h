/* hop_int.h -- what the hop's receiver (recv.c) and sender (send.c) share
 * inside lib/hop: the frame types and sizes of the wire (man/chanbuf-hop.5),
 * the head every frame starts with, and the names of addresses (addr.c). */
#ifndef RN_HOP_HOP_INT_H
#define RN_HOP_HOP_INT_H

#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <uv.h>

#include "core/core.h"
#include "hop/hop.h"

/* Frame types */
#define T_HELLO 'H'
#define T_WELCOME 'W'
#define T_BATCH 'B'
#define T_ACK 'A'
#define T_NACK 'N'
#define T_ERROR 'E'

#define MAGIC "RNHOP"
#define MAGIC_LEN 5
#define FRAME_HEAD 5                        /* u32 length, type */
#define HELLO_LEN (1 + MAGIC_LEN + 1 + 8)   /* type, magic, version, session */
#define WELCOME_LEN (1 + 1 + 4)             /* type, version, max_frame */
#define ACK_LEN (1 + 8 + 1)                 /* type, serial, status */
#define BATCH_HEAD (1 + 8 + 4)              /* type, serial, count */
#define BATCH_HDR (4 + BATCH_HEAD)          /* what goes before the events */

#define READ_CHUNK (64 * 1024)
#define KEEPALIVE_S 60
/* The longest reason text a NACK or an ERROR carries (or is shown of). */
#define MAX_REASON 1024

/* The head of a frame into p[0..FRAME_HEAD): its length len (the type byte
 * and the body, as HELLO_LEN counts) and its type. */
static inline void rn_hop__put_head(unsigned char *p, char type, size_t len)
{
    rn_put_be32(p, (uint32_t)len);
    p[4] = (unsigned char)type;
}

/* 'B', or 0x07 for a byte that does not print. */
static inline const char *rn_hop__type_name(unsigned char t, char *buf, size_t n)
{
    if (t >= 0x21 && t < 0x7f)
        snprintf(buf, n, "'%c'", t);
    else
        snprintf(buf, n, "0x%02x", t);
    return buf;
}

/* addr.c -- names of addresses, for warnings (see also hop.h). */

/* "host:port", or "[v6]:port". */
void rn_hop__target_name(const rn_hop_target *t, char *out, size_t n);

/* An IP literal straight into ss: 1; 0 when the host is a name. */
int rn_hop__ip_literal(const rn_hop_target *t, struct sockaddr_storage *ss);

#endif
