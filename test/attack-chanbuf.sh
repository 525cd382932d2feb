#!/bin/sh
# attack-chanbuf.sh -- what a hostile or broken hop peer can make chanbuf
# --listen hold is bounded (issue 13): a sender that never reads its ACKs
# stops being read (memory flat, others served); frames that never finish
# are bounded in all (an ERROR to the one over the limit); a batch of 0
# events is acknowledged, not refused for ever; connections past
# --max-connections are refused; idle ones are closed, and one stuck in the
# middle of a frame is told why; a file channel on a full disk holds its
# input, resumes by itself, and exits 1 when stopped with input it could not
# store. Each attack is scaled down to seconds and
# asserts the bound. The peers are a raw client in python3.
. "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null || fail "python3 is missing (scripts/bootstrap installs it)"
CHANBUF=$top_builddir/chanbuf

cat >"$T/hop.py" <<'PY'
# hop.py -- a raw client of the hop protocol (man/chanbuf-hop.5), for attacks.
import os, socket, struct, sys, time

def frame(t, body):
    return struct.pack(">I", 1 + len(body)) + t + body

def hello(session):
    return frame(b"H", b"RNHOP" + bytes([1]) + struct.pack(">Q", session))

def event(body):
    # msgpack [ts, {}, bin]: fixarray 3, uint64 ts, fixmap 0, bin8
    v = b"\x93\xcf" + struct.pack(">Q", 1) + b"\x80\xc4" + bytes([len(body)]) + body
    return struct.pack(">I", len(v)) + v

def batch(serial, events):
    return frame(b"B", struct.pack(">QI", serial, len(events)) + b"".join(events))

def connect(addr, rcvbuf=0):
    host, port = addr.rsplit(":", 1)
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect((host, int(port)))
    return s

def read_frame(s, timeout=5):
    s.settimeout(timeout)
    def need(n):
        b = b""
        while len(b) < n:
            c = s.recv(n - len(b))
            if not c:
                return None
            b += c
        return b
    h = need(4)
    if h is None:
        return None, None
    n = struct.unpack(">I", h)[0]
    b = need(n)
    return (b[:1], b[1:]) if b else (None, None)

def welcomed(addr, session, rcvbuf=0):
    s = connect(addr, rcvbuf)
    s.sendall(hello(session))
    t, _ = read_frame(s)
    assert t == b"W", "no WELCOME: %r" % t
    return s

def ack_of(s):
    t, b = read_frame(s)
    if t == b"A":
        return "ack %d %d" % (struct.unpack(">Q", b[:8])[0], b[8])
    if t == b"N":
        return "nack %d %s" % (struct.unpack(">Q", b[:8])[0], b[8:].decode())
    if t == b"E":
        return "error " + b.decode()
    return "closed" if t is None else "frame %r" % t

def rss_kb(pid):
    for line in open("/proc/%s/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

def one_batch(addr, session):
    s = welcomed(addr, session)
    s.sendall(batch(1, [event(b"hello")]))
    r = ack_of(s)
    s.close()
    return r

cmd, addr = sys.argv[1], sys.argv[2]
if cmd == "one":                # a well-behaved sender's batch
    print(one_batch(addr, int(sys.argv[3])))
elif cmd == "empty":            # a batch of 0 events
    s = welcomed(addr, 7)
    s.sendall(batch(1, []))
    print(ack_of(s))
elif cmd == "unread":           # batches, never reading the ACKs
    pid, total = sys.argv[3], int(sys.argv[4])
    s = welcomed(addr, 11, rcvbuf=4096)
    chunk = b"".join(batch(i + 1, []) for i in range(60000))  # serials 1..60000, then again
    per = len(chunk)
    before = rss_kb(pid)
    s.setblocking(False)
    sent, stalled_at = 0, None
    last = time.time()
    while sent < total:
        try:
            n = s.send(chunk[sent % per:] if sent % per else chunk)
            sent += n
            last = time.time()
        except BlockingIOError:
            if time.time() - last > 1.0:
                stalled_at = sent
                break
            time.sleep(0.01)
    time.sleep(0.3)
    grown = rss_kb(pid) - before
    # Another sender is served meanwhile.
    other = one_batch(addr, 12)
    # Now read the ACKs: chanbuf reads on, and answers every whole batch
    # (the one cut off by the stall is finished meanwhile).
    import threading
    blen = len(batch(1, []))
    rest = (blen - sent % blen) % blen
    want = (sent + rest) // blen
    got = [0]
    # One mode for both threads, set before the reader starts: switching a
    # socket between modes while another thread is in recv() is racy in
    # CPython (the timeout and O_NONBLOCK change in two steps), and the
    # reader then saw EAGAIN and stopped counting.
    s.settimeout(10)
    def reader():
        buf = b""
        while got[0] < want:
            try:
                c = s.recv(1 << 20)
            except OSError:
                break
            if not c:
                break
            buf += c
            k = len(buf) // 14
            got[0] += k
            buf = buf[k * 14:]
    th = threading.Thread(target=reader)
    th.start()
    if rest:
        s.sendall(chunk[sent % per:sent % per + rest])
    sent += rest
    th.join()
    got = got[0]
    print("sent=%d stalled=%s grown_kb=%d other=%s acks=%d/%d" %
          (sent, stalled_at is not None, grown, other.replace(" ", "_"), got, want))
elif cmd == "partial":          # many frames that never finish
    pid, nconn, each = sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    before = rss_kb(pid)
    body = os.urandom(1 << 20)
    conns, errors = [], 0
    for i in range(nconn):
        s = welcomed(addr, 100 + i)
        head = struct.pack(">I", (32 << 20) - 16) + b"B" + struct.pack(">QI", 1, 1000)
        try:
            s.sendall(head)
            for k in range(each):
                s.sendall(body)
        except OSError:
            pass
        conns.append(s)
        time.sleep(0.05)
    time.sleep(0.3)
    grown = rss_kb(pid) - before
    for s in conns:
        s.settimeout(0.5)
        try:
            t, b = read_frame(s, 0.5)
            if t == b"E":
                errors += 1
                last = b.decode()
        except (socket.timeout, OSError):
            pass
    other = one_batch(addr, 99)
    print("errors=%d grown_kb=%d other=%s" % (errors, grown, other.replace(" ", "_")))
    if errors:
        print(last)
elif cmd == "conns":            # more connections than allowed
    n = int(sys.argv[3])
    conns = [welcomed(addr, 200 + i) for i in range(n)]
    extra = []
    for i in range(3):
        s = connect(addr)
        s.sendall(hello(300 + i))
        extra.append(ack_of(s))
    conns[0].sendall(batch(1, [event(b"x")]))
    print("first=" + ack_of(conns[0]))
    for e in extra:
        print("extra=" + e)
elif cmd == "idle":             # one idle, one stuck in the middle of a frame
    a = welcomed(addr, 400)
    b = welcomed(addr, 401)
    b.sendall(struct.pack(">I", 100) + b"B12")
    t0 = time.time()
    print("quiet=" + ack_of(a))
    print("stuck=" + ack_of(b))
    print("after=%.1f" % (time.time() - t0))
PY
hop() { python3 "$T/hop.py" "$@"; }

# ---- a sender that never reads its ACKs --------------------------------
start_chanbuf unread --max-unread 64KiB >/dev/null
out=$(hop unread "$C" "$cpid" 24000000)
note "unread: $out"
case $out in *"other=ack_1_0"*) ;; *) fail "unread: another sender was not served: $out" ;; esac
grown=$(echo "$out" | sed 's/.*grown_kb=\([-0-9]*\).*/\1/')
[ "$grown" -lt 10240 ] || fail "unread: chanbuf grew by $grown kB for ACKs nobody reads"
acks=$(echo "$out" | sed 's/.*acks=\([0-9]*\)\/\([0-9]*\).*/\1 \2/')
set -- $acks
expect_eq "unread: every batch answered once the ACKs are read" "$1" "$2"
grep -q "answers unread; not reading from it" "$clog" || fail "unread: nothing said: $(cat "$clog")"

# ---- a batch of 0 events is acknowledged (nothing to store) --------------
expect_eq "empty batch" "$(hop empty "$C")" "ack 1 0"
stop "$cpid"

# ---- frames that never finish: bounded in all ------------------------------
# (A sanitizer build would keep every buffer a realloc left in its quarantine.)
ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=1 \
    start_chanbuf partial --max-partial 32MiB >/dev/null
out=$(hop partial "$C" "$cpid" 8 7)
note "partial: $out"
case $out in *"other=ack_1_0"*) ;; *) fail "partial: another sender was not served: $out" ;; esac
case $out in errors=0*) fail "partial: nobody was refused: $out" ;; esac
echo "$out" | grep -q "would hold more than the limit of 33554432 bytes" ||
    fail "partial: no reason given: $out"
grown=$(echo "$out" | sed -n 's/.*grown_kb=\([-0-9]*\).*/\1/p')
[ "$grown" -lt 40960 ] || fail "partial: chanbuf grew by $grown kB for 56 MiB of unfinished frames"
grep -q "would hold more than the limit" "$clog" || fail "partial: nothing logged: $(cat "$clog")"
stop "$cpid"

# ---- too many connections; idle ones ----------------------------------------
start_chanbuf conns --max-connections 5 --idle-timeout 700ms >/dev/null
out=$(hop conns "$C" 5)
note "conns: $out"
echo "$out" | grep -q "^first=ack 1 0" || fail "conns: an admitted sender was not served: $out"
[ "$(echo "$out" | grep -c '^extra=error too many connections (the limit is 5)')" = 3 ] ||
    fail "conns: the connections over the limit were not refused: $out"
[ "$(grep -c 'too many connections' "$clog")" -ge 1 ] || fail "conns: nothing logged"
[ "$(grep -c 'too many connections' "$clog")" -le 2 ] || fail "conns: logged every refusal"
out=$(hop idle "$C")
note "idle: $out"
echo "$out" | grep -q "^quiet=closed" || fail "idle: an idle connection stayed: $out"
echo "$out" | grep -q "^stuck=error byte offset 19: idle for [0-9]* ms in the middle of a frame" ||
    fail "idle: a connection stuck in a frame was not told: $out"
secs=$(echo "$out" | sed -n 's/^after=//p')
python3 -c "import sys; sys.exit(0 if 0.5 <= $secs <= 5 else 1)" || fail "idle: closed after $secs s"
expect_eq "still serving" "$(hop one "$C" 500)" "ack 1 0"
stop "$cpid"
# ---- a full disk under a file channel ------------------------------------
# A 2 MB tmpfs when mounting is allowed (root); otherwise a file size limit
# (ulimit -f, SIGXFSZ ignored: writes fail with EFBIG), which shows the
# holding and the resuming but not a disk that stays full.
D=$T/disk
mkdir -p "$D"
if mount -t tmpfs -o size=2m tmpfs "$D" 2>/dev/null; then
    trap 'umount "$D" 2>/dev/null || true; cleanup' EXIT INT TERM
    limit() { "$@"; }
    full=tmpfs
else
    limit() { (trap '' XFSZ; ulimit -f 1024; exec "$@"); }
    full=fsize
fi
note "disk full: by $full"
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
rport=$(free_port)
lines() { seq 1 "$2" | sed "s/^/$1 /; s/\$/ some padding to fill the disk faster/"; }
lines a 60000 >"$T/a.in"
limit "$CHANBUF" --dir "$D/ch" --sink "tcp://127.0.0.1:$rport" <"$T/a.in" >/dev/null \
    2>"$T/full.log" &
fpid=$!
PIDS="$PIDS $fpid"
wait_until 20 grep -q "disk full: holding input" "$T/full.log" ||
    fail "disk full: nothing said: $(cat "$T/full.log")"
sleep 1
kill -0 "$fpid" 2>/dev/null || fail "disk full: chanbuf ended: $(cat "$T/full.log")"
# The receiver comes up: the channel drains, its segments go (the active
# one too), and the input goes on by itself to its end.
CB_ADDR=127.0.0.1:$rport start_chanbuf recv >"$T/recv.out"
recvpid=$cpid
st=0
wait_until 60 sh -c "! kill -0 $fpid 2>/dev/null" || fail "disk full: stuck: $(cat "$T/full.log")"
wait "$fpid" || st=$?
expect_eq "disk full: exit status at the end of input" "$st" 0
[ "$(grep -c "disk full: holding input" "$T/full.log")" = 1 ] ||
    fail "disk full: said more than once: $(cat "$T/full.log")"
if [ $full = tmpfs ]; then
    grep -q "room on disk again" "$T/full.log" || fail "disk full: resuming not said"
fi
wait_lines "$T/recv.out" 60000
sort -u "$T/recv.out" | grep -c '^a ' >"$T/n"
expect_eq "disk full: lines delivered" "$(cat "$T/n")" 60000

if [ $full = tmpfs ]; then
    # Stopped while the disk is full, with input read and not stored: exit 1.
    dport=$(free_port)
    lines b 60000 >"$T/b.in"
    "$CHANBUF" --dir "$D/ch" --sink "tcp://127.0.0.1:$dport" <"$T/b.in" >/dev/null \
        2>"$T/stop.log" &
    spid=$!
    PIDS="$PIDS $spid"
    wait_until 20 grep -q "disk full: holding input" "$T/stop.log" ||
        fail "stop: disk never full: $(cat "$T/stop.log")"
    t0=$(date +%s)
    kill -TERM "$spid"
    st=0
    wait "$spid" || st=$?
    expect_eq "stop on a full disk: exit status" "$st" 1
    [ $(($(date +%s) - t0)) -le 12 ] || fail "stop on a full disk took too long"
    grep -q "events read from standard input were not stored" "$T/stop.log" ||
        fail "stop: what was lost was not said: $(cat "$T/stop.log")"
    # A restart on the full disk: what was stored is delivered, the full
    # active segment is reclaimed, and new input goes through.
    lines c 60000 >"$T/c.in"
    st=0
    timeout 60 "$CHANBUF" --dir "$D/ch" --sink "tcp://$C" <"$T/c.in" >/dev/null \
        2>"$T/restart.log" || st=$?
    expect_eq "restart on a full disk: exit status" "$st" 0
    wait_lines "$T/recv.out" 120000 20
    expect_eq "restart: new lines delivered" "$(sort -u "$T/recv.out" | grep -c '^c ')" 60000
    stored=$(sort -u "$T/recv.out" | grep -c '^b ' || true)
    [ "$stored" -gt 0 ] || fail "restart: nothing stored before the stop was delivered"
    expect_eq "restart: the stored lines are the first ones" \
        "$(grep '^b ' "$T/recv.out" | sort -u | sort -k2n | tail -n 1 | cut -d' ' -f2)" "$stored"
fi
stop "$recvpid"
note "attack-chanbuf: ok"
