#!/usr/bin/python3
# promcheck.py -- scrape URL as Prometheus does and hold the answer to the text
# exposition format 0.0.4: the Content-Type, UTF-8, every family opened by
# its HELP and TYPE lines and opened once, counters named *_total, each sample
# in its family, valid names, label values escaped, no series twice, integer
# values. Then parse it again with the parser of prometheus_client (the
# Prometheus project's Python client) and require the same samples. Prints "SERIES<TAB>VALUE" per sample, SERIES as
# served ('name{label="value",...}'); exits 1 naming the first fault.
import re
import sys
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

NAME = r'[a-zA-Z_:][a-zA-Z0-9_:]*'
LNAME = r'[a-zA-Z_][a-zA-Z0-9_]*'
LVAL = r'"(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(r'^(%s)(\{(?:%s=%s(?:,%s=%s)*)?\})? (-?[0-9]+)$'
                    % (NAME, LNAME, LVAL, LNAME, LVAL))
LABEL = re.compile(r'(%s)=(%s)' % (LNAME, LVAL))
HELP = re.compile(r'^# HELP (%s) ((?:[^\\\n]|\\[\\n])*)$' % NAME)
TYPE = re.compile(r'^# TYPE (%s) (counter|gauge)$' % NAME)


def fail(why):
    print('promcheck: %s: %s' % (sys.argv[1], why), file=sys.stderr)
    sys.exit(1)


def unescape(v):
    return re.sub(r'\\([\\"n])', lambda m: '\n' if m.group(1) == 'n' else m.group(1), v)


def main():
    try:
        with urllib.request.urlopen(sys.argv[1], timeout=10) as r:
            ctype, body = r.headers['Content-Type'], r.read()
    except Exception as e:      # an HTTP error or a refusal: say which
        fail('GET: %s' % e)
    if ctype != 'text/plain; version=0.0.4; charset=utf-8':
        fail('Content-Type %r' % ctype)
    try:
        text = body.decode('utf-8')
    except UnicodeDecodeError as e:
        fail('not UTF-8: %s' % e)
    if text and not text.endswith('\n'):
        fail('the last line has no newline')
    families, fam, typ, want_type = set(), None, None, None
    mine, out = set(), []
    for n, line in enumerate(text.split('\n')[:-1], 1):
        m = HELP.match(line)
        if m:
            if want_type:
                fail('line %d: HELP without a TYPE before it' % n)
            fam, want_type = m.group(1), m.group(1)
            if fam in families:
                fail('line %d: family %s opened twice' % (n, fam))
            families.add(fam)
            continue
        m = TYPE.match(line)
        if m:
            if m.group(1) != want_type:
                fail('line %d: TYPE of %s does not follow its HELP' % (n, m.group(1)))
            typ, want_type = m.group(2), None
            if typ == 'counter' and not fam.endswith('_total'):
                fail('line %d: counter %s does not end in _total' % (n, fam))
            continue
        if line.startswith('#'):
            fail('line %d: a comment that is neither HELP nor TYPE: %r' % (n, line))
        m = SAMPLE.match(line)
        if not m:
            fail('line %d: not a sample: %r' % (n, line))
        if want_type or m.group(1) != fam:
            fail('line %d: %s outside its family' % (n, m.group(1)))
        labels = LABEL.findall(m.group(2) or '')
        names = [k for k, _ in labels]
        if len(set(names)) != len(names) or any(k.startswith('__') for k in names):
            fail('line %d: label names %s' % (n, names))
        key = (m.group(1), tuple(sorted((k, unescape(v[1:-1])) for k, v in labels)))
        if key in mine:
            fail('line %d: series twice: %r' % (n, line))
        if typ == 'counter' and int(m.group(3)) < 0:
            fail('line %d: a negative counter' % n)
        mine.add(key + (float(m.group(3)),))
        out.append('%s%s\t%s' % (m.group(1), m.group(2) or '', m.group(3)))
    theirs = set()
    for f in text_string_to_metric_families(text):
        for s in f.samples:
            theirs.add((s.name, tuple(sorted(s.labels.items())), s.value))
    if theirs != mine:
        fail('prometheus_client reads other samples: %r' % (theirs ^ mine))
    print('\n'.join(out))


main()
