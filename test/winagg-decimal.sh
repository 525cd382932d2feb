#!/bin/sh
# winagg-decimal.sh -- exact decimal sums and averages: 100,000 random
# amounts (mostly 2 decimals, some negative, some with 0, 1 or 3 decimals),
# in event time with disorder, over tumbling and sliding windows; every row
# of -a sum and -a avg compared with a Python decimal reference.
. "$(dirname "$0")/lib.sh"
WINAGG=$top_builddir/winagg

# The events: "EPOCH KEY AMOUNT", up to 5 s out of order.
python3 - "$T/events" <<'EOF'
import random, sys
random.seed(12)
with open(sys.argv[1], "w") as f:
    for i in range(100000):
        t = 1700000000 + i // 50 - random.randint(0, 5)
        key = "p%d" % random.randint(1, 20)
        r = random.random()
        scale = 2 if r < 0.85 else 0 if r < 0.90 else 1 if r < 0.95 else 3
        m = random.randint(1, 10 ** (scale + 5))
        digits = str(m).rjust(scale + 1, "0")
        amount = digits[:len(digits) - scale] + ("." + digits[-scale:] if scale else "")
        if random.random() < 0.2:
            amount = "-" + amount
        f.write("%d %s %s\n" % (t, key, amount))
EOF
[ "$(wc -l <"$T/events")" -eq 100000 ] || fail "generator"

# ref W S AGG: the rows per window (aligned to the epoch) and key, sorted.
ref() {
    python3 - "$T/events" "$1" "$2" "$3" <<'EOF'
import sys, datetime
from decimal import Decimal, Context, ROUND_HALF_EVEN, localcontext
path, W, S, agg = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
k = W // S
win = {}
for line in open(path):
    t, key, v = line.split()
    d = Decimal(v)
    n = int(t) // S
    for e in range(n, n + k):
        win.setdefault((e, key), []).append(d)
def iso(s):
    return datetime.datetime.fromtimestamp(s, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
def text(d):
    s = format(d, "f")
    return s[1:] if d == 0 and s.startswith("-") else s
out = []
for (e, key), vals in win.items():
    scale = max(-v.as_tuple().exponent for v in vals)
    total = sum(vals, Decimal(0))
    if agg == "sum":
        val = text(total.quantize(Decimal(1).scaleb(-scale)))
    elif scale == 0:
        x = float(total) / len(vals)          # integers alone: a double
        val = "%.15g" % x
        if float(val) != x:
            val = "%.17g" % x
    else:
        with localcontext(Context(prec=60)):
            q = (total / len(vals)).quantize(Decimal(1).scaleb(-(scale + 6)),
                                              rounding=ROUND_HALF_EVEN)
        val = text(q)
        while len(val) - val.index(".") - 1 > scale and val.endswith("0"):
            val = val[:-1]
    out.append("%s\t%s\t%s\t%s" % (iso((e - k + 1) * S), iso((e + 1) * S), key, val))
print("\n".join(sorted(out)))
EOF
}

check() { # W S AGG
    "$WINAGG" -f 2 -a "$3" --value-field 3 -w "$1s" -s "$2s" --time '^([0-9]+) ' \
        --time-format epoch --lateness 10s "$T/events" >"$T/out" 2>"$T/err" \
        || fail "winagg -w $1s -s $2s -a $3: $(cat "$T/err")"
    grep -v '^#' "$T/out" | LC_ALL=C sort >"$T/got"
    ref "$1" "$2" "$3" | LC_ALL=C sort >"$T/exp"
    [ "$(wc -l <"$T/exp")" -gt 1000 ] || fail "reference too small"
    expect_file "$T/got" "$T/exp"
}

for agg in sum avg; do
    check 10 10 $agg
    check 30 10 $agg
    check 60 20 $agg
done

# No binary noise: the seeds' 1286.89 three times.
printf '1700000000 p 1286.89\n1700000001 p 1286.89\n1700000002 p 1286.89\n' \
    | "$WINAGG" -f 2 -a sum --value-field 3 -w 10s --time '^([0-9]+) ' --time-format epoch \
    | grep -v '^#' | cut -f 4 >"$T/money"
expect_eq "sum of 3 x 1286.89" "$(cat "$T/money")" 3860.67
