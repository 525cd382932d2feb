#!/usr/bin/env python3
# kraw.py -- a raw Kafka-protocol client for the attack tests: builds the
# requests a hostile or careless client can send (huge CreateTopics, a
# Metadata naming thousands of topics, batches that lie, big OffsetCommits,
# JoinGroup storms) and prints what brokerd answered, one fact a line.
import socket
import struct
import sys
import time
import zlib


# ---- encoding -------------------------------------------------------------

def i8(v): return struct.pack('>b', v)
def i16(v): return struct.pack('>h', v)
def i32(v): return struct.pack('>i', v)
def i64(v): return struct.pack('>q', v)


def string(s):
    if s is None:
        return i16(-1)
    if isinstance(s, str):
        s = s.encode()
    return i16(len(s)) + s


def nbytes(b):
    return i32(-1) if b is None else i32(len(b)) + b


def array(items):
    return i32(len(items)) + b''.join(items)


def varint(v):
    z = (v << 1) ^ (v >> 63)
    out = b''
    while z >= 0x80:
        out += bytes([(z & 0x7f) | 0x80])
        z >>= 7
    return out + bytes([z])


# CRC-32C (Castagnoli), table-driven.
_T = []
for n in range(256):
    c = n
    for _ in range(8):
        c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    _T.append(c)


def crc32c(data):
    c = 0xffffffff
    for b in data:
        c = _T[(c ^ b) & 0xff] ^ (c >> 8)
    return c ^ 0xffffffff


def record(i, value, length=None, delta=None):
    body = (b'\x00' + varint(0) + varint(i if delta is None else delta) + varint(-1)
            + varint(len(value)) + value + varint(0))
    return varint(len(body) if length is None else length) + body


def records(values):
    return b''.join(record(i, v) for i, v in enumerate(values))


def batch(recs, count, last_delta, codec=0):
    """A RecordBatch v2 around raw record bytes, with a valid CRC."""
    after_crc = (i16(codec) + i32(last_delta) + i64(1000) + i64(1000) + i64(-1)
                 + i16(-1) + i32(-1) + i32(count) + recs)
    head = i32(0) + i8(2)
    body = head + struct.pack('>I', crc32c(after_crc)) + after_crc
    return i64(0) + i32(len(body)) + body


def gzip(data):
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    return z.compress(data) + z.flush()


# ---- the connection ---------------------------------------------------------

class Conn:
    def __init__(self, addr):
        host, port = addr.rsplit(':', 1)
        self.s = socket.create_connection((host, int(port)), timeout=60)
        self.cid = 0

    def send(self, key, ver, body):
        self.cid += 1
        hdr = i16(key) + i16(ver) + i32(self.cid) + string('kraw')
        msg = hdr + body
        self.s.sendall(i32(len(msg)) + msg)
        return self.cid

    def recv(self):
        n = struct.unpack('>i', self._read(4))[0]
        data = self._read(n)
        return Reader(data[4:])

    def call(self, key, ver, body):
        self.send(key, ver, body)
        return self.recv()

    def _read(self, n):
        buf = b''
        while len(buf) < n:
            chunk = self.s.recv(n - len(buf))
            if not chunk:
                raise EOFError('connection closed')
            buf += chunk
        return buf


class Reader:
    def __init__(self, data):
        self.d = data
        self.o = 0

    def take(self, n):
        v = self.d[self.o:self.o + n]
        if len(v) != n:
            raise EOFError('short response')
        self.o += n
        return v

    def i16(self): return struct.unpack('>h', self.take(2))[0]
    def i32(self): return struct.unpack('>i', self.take(4))[0]
    def i64(self): return struct.unpack('>q', self.take(8))[0]

    def str(self):
        n = self.i16()
        return None if n < 0 else self.take(n)


# ---- requests ---------------------------------------------------------------

def create_topics(c, topics, ver=1):
    """topics: [(name, partitions)]; prints 'name error message'."""
    body = array([string(n) + i32(p) + i16(-1) + array([]) + array([]) for n, p in topics])
    body += i32(30000) + (i8(0) if ver >= 1 else b'')
    r = c.call(19, ver, body)
    if ver >= 2:
        r.i32()
    for _ in range(r.i32()):
        name = r.str().decode()
        err = r.i16()
        msg = r.str() if ver >= 1 else None
        print(name, err, (msg or b'-').decode())


def metadata(c, names, allow=1):
    body = array([string(n) for n in names]) + i8(allow)
    r = c.call(3, 4, body)
    r.i32()
    for _ in range(r.i32()):
        r.i32(); r.str(); r.i32(); r.str()
    r.str(); r.i32()
    errs = {}
    for _ in range(r.i32()):
        e = r.i16()
        r.str()
        r.take(1)
        for _ in range(r.i32()):
            r.i16(); r.i32(); r.i32()
            for _ in range(r.i32()):
                r.i32()
            for _ in range(r.i32()):
                r.i32()
        errs[e] = errs.get(e, 0) + 1
    for e in sorted(errs):
        print('error', e, 'topics', errs[e])


def produce(c, topic, recset, ver=7):
    """Prints 'error base_offset' for partition 0."""
    body = (string(None) + i16(-1) + i32(30000)
            + array([string(topic) + array([i32(0) + nbytes(recset)])]))
    if ver < 3:
        raise ValueError('Produce v3+')
    r = c.call(0, ver, body)
    r.i32()
    r.str()
    r.i32()
    r.i32()
    e = r.i16()
    base = r.i64()
    print(e, base)


BAD = {
    # a record length of 2e9 in a batch of one record
    'huge-record': lambda: batch(varint(2000000000) + b'\x00' * 20, 1, 0),
    'codec7': lambda: batch(records([b'x', b'y']), 2, 1, codec=7),
    'corrupt-gzip': lambda: batch(bytes(b ^ 0x55 if 12 < i < 30 else b
                                        for i, b in enumerate(gzip(records([b'a' * 50] * 5)))),
                                  5, 4, codec=1),
    'gzip-lies': lambda: batch(gzip(records([b'a', b'b'])), 3, 2, codec=1),
    'delta-lies': lambda: batch(records([b'1', b'2', b'3', b'4', b'5']), 5, 0),
    'count-lies': lambda: batch(records([b'1', b'2']), 2, 1000),
    'both-lie': lambda: batch(records([b'1', b'2']), 1001, 1000),
    'offsets-lie': lambda: batch(record(0, b'1') + record(1, b'2', delta=0), 2, 1),
    'zstd': lambda: batch(b'\x28\xb5\x2f\xfd' + b'\x00' * 16, 1, 0, codec=4),
    # raw snappy of 60 bytes: a copy from 65535 bytes back, before the start
    'corrupt-snappy': lambda: batch(b'\x3c\x0e\xff\xff', 1, 0, codec=2),
    # an lz4 frame whose header checksum is wrong
    'corrupt-lz4': lambda: batch(b'\x04\x22\x4d\x18\x60\x40\x00' + b'\x00' * 8, 1, 0, codec=3),
    # a zstd frame whose only block has the reserved type
    'corrupt-zstd': lambda: batch(b'\x28\xb5\x2f\xfd\x00\x00\x07\x00\x00', 1, 0, codec=4),
}


def good(values):
    return good_bytes([v.encode() for v in values])


def good_bytes(values):
    return batch(records(values), len(values), len(values) - 1)


def good_gzip(values):
    return batch(gzip(records([v.encode() for v in values])), len(values), len(values) - 1,
                 codec=1)


def esc(a):
    """An argument with Python escapes (\\n, \\x00) as bytes."""
    return a if isinstance(a, bytes) else a.encode().decode('unicode_escape').encode('latin-1')


def offset_commit(c, group, topic, nparts, base=0, meta=b''):
    group = esc(group)
    topic = esc(topic)
    """OffsetCommit v2 from outside the group: prints the error codes seen."""
    parts = [i32(p) + i64(base + p) + string(meta) for p in range(nparts)]
    body = (string(group) + i32(-1) + string('') + i64(-1)
            + array([string(topic) + array(parts)]))
    r = c.call(8, 2, body)
    errs = {}
    for _ in range(r.i32()):
        r.str()
        for _ in range(r.i32()):
            r.i32()
            e = r.i16()
            errs[e] = errs.get(e, 0) + 1
    return errs


def offset_fetch(c, group, topic, parts):
    group = esc(group)
    topic = esc(topic)
    body = string(group) + array([string(topic) + array([i32(p) for p in parts])])
    r = c.call(9, 1, body)
    out = []
    for _ in range(r.i32()):
        r.str()
        for _ in range(r.i32()):
            p = r.i32()
            off = r.i64()
            meta = r.str()
            r.i16()
            out.append((p, off, meta))
    return out


def join_storm(c, group, n, answers):
    """n JoinGroup v0 with no member id, pipelined; reads the first
    `answers` answers (the rest wait for a rebalance) and returns their
    error codes."""
    body = (string(group) + i32(6000) + i32(1000) + string('') + string('consumer')
            + array([string('range') + nbytes(b'')]))
    for _ in range(n):
        c.send(11, 1, body)
    errs = {}
    for _ in range(answers):
        r = c.recv()
        e = r.i16()
        errs[e] = errs.get(e, 0) + 1
    return errs


def main():
    addr, cmd, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    c = Conn(addr)
    if cmd == 'create':             # create NAME:PARTS ...
        create_topics(c, [(a.split(':')[0], int(a.split(':')[1])) for a in args])
    elif cmd == 'metadata':         # metadata PREFIX N
        metadata(c, ['%s%d' % (args[0], i) for i in range(int(args[1]))])
    elif cmd == 'produce':          # produce TOPIC KIND [VERSION]
        kind = args[1]
        ver = int(args[2]) if len(args) > 2 else 7
        if kind.startswith('good:'):
            rs = good(kind[5:].split(','))
        elif kind.startswith('gzip:'):
            rs = good_gzip(kind[5:].split(','))
        else:
            rs = BAD[kind]()
        produce(c, args[0], rs, ver)
    elif cmd == 'fill':             # fill TOPIC FIRST N SIZE: "k error base" a line
        # N one-record batches, value k (8 digits) padded to SIZE bytes.
        for k in range(int(args[1]), int(args[1]) + int(args[2])):
            v = b'%08d' % k
            sys.stdout.write('%d ' % k)
            produce(c, args[0], good_bytes([v + b'.' * (int(args[3]) - len(v))]))
            sys.stdout.flush()
    elif cmd == 'commit-time':      # commit-time GROUP TOPIC N: best of 3, seconds
        best = None
        for k in range(3):
            t0 = time.monotonic()
            errs = offset_commit(c, args[0] + str(k), args[1], int(args[2]))
            dt = time.monotonic() - t0
            assert list(errs) == [0], errs
            best = dt if best is None else min(best, dt)
        print('%.6f' % best)
    elif cmd == 'commit':           # commit GROUP TOPIC N BASE [META]
        meta = esc(args[4]) if len(args) > 4 else b''
        errs = offset_commit(c, args[0], args[1], int(args[2]), int(args[3]), meta)
        print(' '.join('%d:%d' % kv for kv in sorted(errs.items())))
    elif cmd == 'fetch-offsets':    # fetch-offsets GROUP TOPIC N: "p off metalen metahash"
        for p, off, meta in offset_fetch(c, args[0], args[1], range(int(args[2]))):
            print(p, off, len(meta or b''), zlib.crc32(meta or b''))
    elif cmd == 'join-storm':       # join-storm GROUP N ANSWERS: error:count ...
        errs = join_storm(c, args[0], int(args[1]), int(args[2]))
        print(' '.join('%d:%d' % kv for kv in sorted(errs.items())))
    else:
        sys.exit('kraw.py: unknown command ' + cmd)


if __name__ == '__main__':
    main()
