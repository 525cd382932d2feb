# winagg-ref.py -- the reference for the winagg shell tests, independent of
# winagg: the count per key of json events (key: what follows "Input=" in the
# body, time: "ts" in ns) over windows of K slides of S seconds, aligned to
# the epoch; one row per window and key, sorted, as winagg -o tsv or json
# writes them. And the events themselves: N of them from 1700000000 on, 0 to
# 0.2 s apart, each moved back by up to DISORDER seconds, keys of 5 words.
#   python3 winagg-ref.py EVENTS S K tsv|json
#   python3 winagg-ref.py gen EVENTS N SEED DISORDER
import json, random, sys, time

if sys.argv[1] == "gen":
    n, seed, disorder = int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
    random.seed(seed)
    words = ["phone", "shoes", "tea", "book", "lamp"]
    t = 1700000000.5
    with open(sys.argv[2], "w") as f:
        for i in range(n):
            t += random.random() * 0.2
            ts = int((t - random.random() * disorder) * 1e9)
            f.write(json.dumps({"ts": ts, "headers": {}, "body": "Input=" + random.choice(words)})
                    + "\n")
    sys.exit(0)
events, S, K, fmt = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
iso = lambda s: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(s))
cnt = {}
for line in open(events):
    ev = json.loads(line)
    key = ev["body"].split("Input=", 1)[1]
    n = ev["ts"] // (S * 10**9)
    for e in range(n, n + K):
        k = (iso((e - K + 1) * S), iso((e + 1) * S), key)
        cnt[k] = cnt.get(k, 0) + 1
for k in sorted(cnt):
    if fmt == "tsv":
        print("%s\t%s\t%s\t%d" % (k + (cnt[k],)))
    else:
        print(json.dumps({"start": k[0], "end": k[1], "key": k[2], "value": cnt[k]},
                         separators=(",", ":")))
