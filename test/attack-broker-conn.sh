#!/bin/sh
# attack-broker-conn.sh -- what a peer can make brokerd hold through its
# connections, tried with raw-protocol clients (python3): requests pipelined
# without reading the answers, fetches whose answers are never read, partial
# requests on many connections, more connections than allowed, idle
# connections, long-poll fetches parked while others produce, and a
# shutdown while a client reads nothing. Each is bounded, and every other
# client is served meanwhile.
. "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null || fail "python3 is missing (scripts/bootstrap installs it)"
command -v kcat >/dev/null || fail "kcat is missing (scripts/bootstrap installs it)"

# The raw Kafka client the attacks share.
cat >"$T/kraw.py" <<'EOF'
import select, socket, struct, sys, threading, time

def connect(addr):
    h, p = addr.rsplit(":", 1)
    s = socket.create_connection((h, int(p)))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s

def frame(key, ver, corr, body=b"", client=b"t"):
    hdr = struct.pack(">hhih", key, ver, corr, len(client)) + client
    return struct.pack(">i", len(hdr) + len(body)) + hdr + body

def apiversions(corr, pad=0):
    # v0 has an empty body: padding after it is ignored, which makes a
    # request of any size.
    return frame(18, 0, corr, b"\0" * pad)

def kstr(s):
    return struct.pack(">h", len(s)) + s

def fetch(corr, topic, parts, max_wait=0, min_bytes=1, pmax=1 << 20, max_bytes=0x7fffffff):
    # v4: replica, max_wait, min_bytes, max_bytes, isolation, [topic [part off max]]
    # parts: (partition, offset) pairs.
    body = struct.pack(">iiiib", -1, max_wait, min_bytes, max_bytes, 0)
    body += struct.pack(">i", 1) + kstr(topic) + struct.pack(">i", len(parts))
    body += b"".join(struct.pack(">iqi", p, o, pmax) for p, o in parts)
    return frame(1, 4, corr, body)

def _crc32c_table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t.append(c)
    return t
_T = _crc32c_table()

def crc32c(b):
    c = 0xFFFFFFFF
    for x in b:
        c = _T[(c ^ x) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF

def varint(n):
    n = (n << 1) ^ (n >> 63)
    out = b""
    while True:
        if n < 0x80:
            return out + bytes([n])
        out += bytes([(n & 0x7F) | 0x80])
        n >>= 7

def batch(value):
    rec = b"\0" + varint(0) + varint(0) + varint(-1) + varint(len(value)) + value + varint(0)
    rec = varint(len(rec)) + rec
    ts = int(time.time() * 1000)
    after_crc = struct.pack(">hiqqqhii", 0, 0, ts, ts, -1, -1, -1, 1) + rec
    crc = crc32c(after_crc)
    tail = struct.pack(">ib", 0, 2) + struct.pack(">I", crc) + after_crc
    return struct.pack(">qi", 0, len(tail)) + tail

def produce(corr, topic, part, value):
    # v3: transactional_id (null), acks, timeout, [topic [part records]]
    b = batch(value)
    body = struct.pack(">hhi", -1, 1, 5000) + struct.pack(">i", 1) + kstr(topic)
    body += struct.pack(">ii", 1, part) + struct.pack(">i", len(b)) + b
    return frame(0, 3, corr, body)

def recv_exact(s, n):
    buf = bytearray()
    while len(buf) < n:
        k = s.recv(n - len(buf))
        if not k:
            raise EOFError("connection closed after %d of %d bytes" % (len(buf), n))
        buf += k
    return bytes(buf)

def response(s):
    """One answer: (correlation id, body)."""
    n = struct.unpack(">i", recv_exact(s, 4))[0]
    b = recv_exact(s, n)
    return struct.unpack(">i", b[:4])[0], b[4:]

def rss_mb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS")

def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)

def served(addr, timeout=5):
    """A fresh client gets its ApiVersions answered."""
    s = connect(addr)
    s.settimeout(timeout)
    s.sendall(apiversions(4242))
    corr, _ = response(s)
    s.close()
    return corr == 4242

def closed_by_peer(s, timeout):
    """Whether the peer closes s within timeout (reading what comes)."""
    s.settimeout(timeout)
    try:
        while True:
            if not s.recv(65536):
                return True
    except (socket.timeout, BlockingIOError):
        return False
    except ConnectionResetError:
        return True

def send_until_stalled(s, data, limit, stall=1.5, pid=None, rss_limit=None):
    """Send data over and over (non-blocking) until limit bytes are sent or
    the peer stops reading for stall seconds. Returns the bytes sent."""
    s.setblocking(False)
    view = memoryview(data)
    sent = off = 0
    next_check = 1 << 20
    while sent < limit:
        _, w, _ = select.select([], [s], [], stall)
        if not w:
            break
        try:
            k = s.send(view[off:off + min(len(data) - off, limit - sent)])
        except BlockingIOError:
            continue
        sent += k
        off = (off + k) % len(data)
        if pid and sent >= next_check:
            next_check += 1 << 20
            if rss_mb(pid) > rss_limit:
                fail("brokerd's RSS is %.0f MB after %.1f MB sent" % (rss_mb(pid), sent / 1e6))
    s.setblocking(True)
    return sent
EOF
export PYTHONPATH=$T
# Under ASan, freed memory waits in a quarantine that RSS counts: keep it
# small so that the bounds below measure brokerd, not the sanitizer.
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=16"
export ASAN_OPTIONS

# Start brokerd with the limits under test set low.
start() {
    start_brokerd --partitions 1 --max-request 16MiB --max-conn-buffer 1MiB "$@"
}

# ---- 1. Pipelined requests whose answers are not read ----------------------
start
python3 - "$B" "$bpid" <<'EOF' || fail "pipelined requests"
import sys, struct, threading
from kraw import *
addr, pid = sys.argv[1], int(sys.argv[2])
reqs = [apiversions(i) for i in range(65536)]
n1 = len(reqs[0])
data = b"".join(reqs)
s = connect(addr)
sent = send_until_stalled(s, data, 200 << 20, pid=pid, rss_limit=100)
rss = rss_mb(pid)
print("# pipelined: sent %.1f MB; brokerd RSS %.0f MB" % (sent / 1e6, rss), file=sys.stderr)
if sent >= 200 << 20:
    fail("brokerd read 200 MB of requests without their answers being read")
if rss > 100:
    fail("brokerd's RSS is %.0f MB" % rss)
if not served(addr):
    fail("another client was not served while one did not read")
# Finish the last request, then every answer comes, in order.
whole, part = divmod(sent, n1)
t = threading.Thread(target=lambda: s.sendall(data[(sent % len(data)):(sent % len(data)) + (n1 - part)] if part else b""))
t.start()
want = whole + (1 if part else 0)
s.settimeout(20)
buf = bytearray()
got = 0
while got < want:
    k = s.recv(1 << 20)
    if not k:
        fail("closed after %d of %d answers" % (got, want))
    buf += k
    off = 0
    while len(buf) - off >= 8:
        n = struct.unpack_from(">i", buf, off)[0]
        if len(buf) - off < 4 + n:
            break
        corr = struct.unpack_from(">i", buf, off + 4)[0]
        if corr != got % 65536:
            fail("answer %d has correlation id %d" % (got, corr))
        got += 1
        off += 4 + n
    del buf[:off]
t.join()
EOF

# ---- 2. Fetches whose answers are not read ---------------------------------
# Answers of many small batches are copied into memory: 200 partitions of
# ~12 KB each make a 2.4 MB answer; 40 of them must not all be held.
stop "$bpid"
rm -rf "$T/data"
start --partitions 200
python3 - "$B" <<'EOF' || fail "producing to fat"
import sys
from kraw import *
s = connect(sys.argv[1])
s.settimeout(20)
v = b"x" * 3000
for p in range(200):
    for k in range(4):
        s.sendall(produce(p * 4 + k, b"fat", p, v))
        corr, body = response(s)
EOF
python3 - "$B" "$bpid" <<'EOF' || fail "pipelined fetches"
import sys, time
from kraw import *
addr, pid = sys.argv[1], int(sys.argv[2])
parts = [(p, 0) for p in range(200)]
# One answer first: it holds every partition's records.
s = connect(addr)
s.settimeout(20)
s.sendall(fetch(1, b"fat", parts, pmax=15000))
corr, body = response(s)
if len(body) < 200 * 12000:
    fail("a fetch answer has %d bytes, expected all 200 partitions" % len(body))
s.close()
base = rss_mb(pid)
s = connect(addr)
data = b"".join(fetch(i, b"fat", parts, pmax=15000) for i in range(40))
sent = send_until_stalled(s, data, len(data), pid=pid, rss_limit=base + 60)
time.sleep(0.5)
rss = rss_mb(pid)
print("# fetches: sent %d of %d; brokerd RSS %.0f MB, %.0f before" % (sent, len(data), rss, base),
      file=sys.stderr)
if rss > base + 25:
    fail("brokerd's RSS grew from %.0f to %.0f MB with 40 unread fetch answers" % (base, rss))
if not served(addr):
    fail("another client was not served")
s.sendall(data[sent:])
s.settimeout(20)
for i in range(40):
    corr, body = response(s)
    if corr != i:
        fail("answer %d has correlation id %d" % (i, corr))
EOF
stop "$bpid"
rm -rf "$T/data"

# ---- 3. Partial requests on many connections -------------------------------
start --max-partial 32MiB
python3 - "$B" "$bpid" <<'EOF' || fail "partial requests"
import sys, threading, time
from kraw import *
addr, pid = sys.argv[1], int(sys.argv[2])
size = 12 << 20
req = apiversions(7, pad=size - 11)
conns = [connect(addr) for _ in range(20)]
sent = []
for s in conns:
    # All but the last byte, as far as the broker reads it.
    sent.append(send_until_stalled(s, req[:-1], len(req) - 1, stall=0.3, pid=pid, rss_limit=120))
rss = rss_mb(pid)
print("# partial: sent %.0f MB in all; brokerd RSS %.0f MB" % (sum(sent) / 1e6, rss),
      file=sys.stderr)
if rss > 80:
    fail("20 partial requests of 12 MB hold %.0f MB" % rss)
if not served(addr):
    fail("a small request was not served")
# Each completes its request in turn and is answered.
errs = []
def finish(s, k):
    try:
        s.sendall(req[k:])
        s.settimeout(30)
        corr, _ = response(s)
        if corr != 7:
            errs.append("correlation id %d" % corr)
    except Exception as e:
        errs.append(str(e))
ts = [threading.Thread(target=finish, args=(s, k)) for s, k in zip(conns, sent)]
for t in ts: t.start()
for t in ts: t.join()
if errs:
    fail("completing the partial requests: " + "; ".join(errs[:3]))
EOF
grep -q 'partial requests' "$blog" || fail "no log line about partial requests: $(cat "$blog")"
stop "$bpid"

# ---- 4. More connections than allowed --------------------------------------
start --max-connections 5
python3 - "$B" <<'EOF' || fail "connection cap"
import sys, time
from kraw import *
addr = sys.argv[1]
keep = [connect(addr) for _ in range(5)]
time.sleep(0.3)
over = [connect(addr) for _ in range(10)]
for s in over:
    if not closed_by_peer(s, 2):
        fail("a connection over --max-connections was kept")
keep[0].settimeout(5)
keep[0].sendall(apiversions(9))
if response(keep[0])[0] != 9:
    fail("an existing client was not served")
keep[1].close()
time.sleep(0.3)
if not served(addr):
    fail("a connection under the cap again was refused")
EOF
wait_until 5 grep -q 'refused 10 connections over --max-connections 5' "$blog" ||
    fail "no log line for refused connections: $(cat "$blog")"
expect_eq "refusal log lines" "$(grep -c 'over --max-connections' "$blog")" 1
stop "$bpid"

# ---- 5. Idle connections ----------------------------------------------------
start --idle-timeout 1s
python3 - "$B" <<'EOF' || fail "idle timeout"
import sys, time
from kraw import *
addr = sys.argv[1]
idle = connect(addr)
busy = connect(addr)
busy.settimeout(5)
t0 = time.time()
for i in range(8):      # 2.4 s of a request every 300 ms
    busy.sendall(apiversions(i))
    if response(busy)[0] != i:
        fail("the busy client was not answered")
    time.sleep(0.3)
if not closed_by_peer(idle, 1):
    fail("an idle connection was kept for %.1f s with --idle-timeout 1s" % (time.time() - t0))
EOF
grep -q 'idle' "$blog" || fail "no log line for idle connections"
stop "$bpid"

# ---- 6. A Produce with many parked fetches ----------------------------------
# 20 long-poll fetches naming 50,000 partitions each (partition 0 of a topic,
# over and over) wait on topic "wide"; a Produce to "hot" must not rebuild them.
start
python3 - "$B" <<'EOF' || fail "parked fetches"
import sys, time, statistics
from kraw import *
addr = sys.argv[1]
p = connect(addr)
p.settimeout(10)
def lat(n=40):
    ts = []
    for i in range(n):
        t = time.perf_counter()
        p.sendall(produce(i, b"hot", 0, b"v"))
        corr, body = response(p)
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)
p.sendall(produce(0, b"wide", 0, b"v"))
response(p)
lat(10)
before = lat()
fs = []
for i in range(20):
    s = connect(addr)
    s.sendall(fetch(i, b"wide", [(0, 1)] * 50000, max_wait=20000, min_bytes=1))
    fs.append(s)
time.sleep(0.5)
if not served(addr):
    fail("not served")
parked = lat()
print("# produce: median %.2f ms without parked fetches, %.2f ms with 20" %
      (before * 1e3, parked * 1e3), file=sys.stderr)
if parked > 4 * before + 0.002:
    fail("produce takes %.2f ms with 20 parked fetches, %.2f ms without" %
         (parked * 1e3, before * 1e3))
# A Produce to their topic answers them.
p.sendall(produce(99, b"wide", 0, b"w"))
response(p)
for i, s in enumerate(fs):
    s.settimeout(10)
    if response(s)[0] != i:
        fail("parked fetch %d not answered" % i)
EOF

# ---- 7. Shutdown while a client reads nothing -------------------------------
python3 - "$B" "$bpid" <<'EOF' &
import sys, time
from kraw import *
s = connect(sys.argv[1])
data = b"".join(apiversions(i) for i in range(65536))
send_until_stalled(s, data, 64 << 20)
time.sleep(30)
EOF
reader=$!
PIDS="$PIDS $reader"
sleep 3
kill -TERM "$bpid"
t0=$(date +%s)
wait "$bpid" || fail "brokerd exited $? on SIGTERM with a client that reads nothing"
t1=$(date +%s)
[ $((t1 - t0)) -le 3 ] || fail "shutdown took $((t1 - t0)) s with a client that reads nothing"
kill "$reader" 2>/dev/null || true
exit 0
