// dashboard.js -- drives headless Chromium over the DevTools protocol (on a
// pipe: --remote-debugging-pipe, no port, no npm package) for dashboard.sh.
//
//   node dashboard.js CHROMIUM PROFILE_DIR URL STEP...
//
// It opens URL in a phone-sized page and runs the steps in order:
//   expect=JSON   poll the page until its bars, as [[key, value, move], ...]
//                 (the data-key, data-value, data-move of each #bars .bar),
//                 equal JSON; fail after 10 s, printing what the page shows
//   feed=FILE:TO  append the bytes of FILE to the file TO (a fifo that the
//                 server reads), and time the next expect from then
//   fits          the page is no wider than the phone's screen
//   lines=N       the line chart has N lines
//   windows=N     poll until the page holds N windows (body's data-windows)
//   reload        load the page again (its history comes from /api/windows)
// and prints one line per step done ("ok expect 1 ms"); exit status 0 when
// every step passed.
'use strict';
const { spawn } = require('child_process');
const fs = require('fs');

const [chromium, profile, url, ...steps] = process.argv.slice(2);
const child = spawn(chromium, [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--disable-extensions', '--user-data-dir=' + profile, '--remote-debugging-pipe',
    'about:blank',
], { stdio: ['ignore', 'ignore', 'inherit', 'pipe', 'pipe'] });

let nextId = 1, inbuf = Buffer.alloc(0);
const pending = new Map();

function die(msg) {
    console.error('dashboard.js: ' + msg);
    child.kill('SIGKILL');
    process.exit(1);
}

child.on('exit', (code, sig) => die('chromium exited (' + (sig || code) + ')'));
child.on('error', (e) => die('cannot run ' + chromium + ': ' + e.message));
child.stdio[4].on('data', (chunk) => {
    inbuf = Buffer.concat([inbuf, chunk]);
    let end;
    while ((end = inbuf.indexOf(0)) >= 0) {
        const m = JSON.parse(inbuf.subarray(0, end).toString('utf8'));
        inbuf = inbuf.subarray(end + 1);
        const p = m.id !== undefined && pending.get(m.id);
        if (!p)
            continue;
        pending.delete(m.id);
        if (m.error)
            p.reject(new Error(p.method + ': ' + m.error.message));
        else
            p.resolve(m.result);
    }
});

function send(method, params, sessionId) {
    const id = nextId++;
    const m = { id, method, params: params || {} };
    if (sessionId)
        m.sessionId = sessionId;
    child.stdio[3].write(JSON.stringify(m) + '\0');
    return new Promise((resolve, reject) => pending.set(id, { resolve, reject, method }));
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function evaluate(session, expr) {
    const r = await send('Runtime.evaluate', { expression: expr, returnByValue: true }, session);
    if (r.exceptionDetails)
        throw new Error('page: ' + JSON.stringify(r.exceptionDetails));
    return r.result.value;
}

// While a page loads, a look may fail (no body yet, the context replaced):
// a poll takes that as "not yet".
const look = (session, expr) => evaluate(session, expr).catch(() => '');

const BARS = `JSON.stringify([...document.querySelectorAll('#bars .bar')].map(
    (e) => [e.dataset.key, e.dataset.value, e.dataset.move]))`;

async function main() {
    const { targetId } = await send('Target.createTarget', { url: 'about:blank' });
    const { sessionId: s } = await send('Target.attachToTarget', { targetId, flatten: true });
    await send('Emulation.setDeviceMetricsOverride',
               { width: 390, height: 844, deviceScaleFactor: 3, mobile: true }, s);
    await send('Page.enable', {}, s);
    await send('Page.navigate', { url }, s);
    let since = Date.now();
    for (const step of steps) {
        const eq = step.indexOf('=');
        const name = eq < 0 ? step : step.slice(0, eq), arg = eq < 0 ? '' : step.slice(eq + 1);
        if (name === 'expect') {
            const want = JSON.stringify(JSON.parse(arg));
            let got = '';
            const t0 = Date.now();
            while ((got = await look(s, BARS)) !== want) {
                if (Date.now() - t0 > 10000)
                    die('the bars are\n  ' + got + '\nexpected\n  ' + want);
                await sleep(5);
            }
            console.log('ok expect ' + (Date.now() - since) + ' ms');
        } else if (name === 'feed') {
            const [from, to] = arg.split(':');
            since = Date.now();
            fs.appendFileSync(to, fs.readFileSync(from));
            console.log('ok feed ' + from);
        } else if (name === 'fits') {
            const w = await evaluate(s, `JSON.stringify([document.documentElement.scrollWidth,
                                                         document.documentElement.clientWidth])`);
            const [sw, cw] = JSON.parse(w);
            if (sw > cw)
                die('the page is ' + sw + ' px wide on a ' + cw + ' px screen');
            console.log('ok fits ' + sw + ' <= ' + cw);
        } else if (name === 'lines') {
            const n = await evaluate(s, `document.querySelectorAll('#chart polyline').length`);
            if (n !== Number(arg))
                die('the chart has ' + n + ' lines, expected ' + arg);
            console.log('ok lines ' + n);
        } else if (name === 'windows') {
            const t0 = Date.now();
            let n;
            while ((n = await look(s, `(document.body && document.body.dataset.windows) || '0'`)) !== arg) {
                if (Date.now() - t0 > 10000)
                    die('the page holds ' + n + ' windows, expected ' + arg);
                await sleep(5);
            }
            console.log('ok windows ' + n);
        } else if (name === 'reload') {
            // By way of a blank page, so that no look sees the old document.
            await send('Page.navigate', { url: 'about:blank' }, s);
            const t0 = Date.now();
            while ((await look(s, 'location.href')) !== 'about:blank') {
                if (Date.now() - t0 > 10000)
                    die('the blank page did not load');
                await sleep(5);
            }
            await send('Page.navigate', { url }, s);
            since = Date.now();
            console.log('ok reload');
        } else {
            die('unknown step ' + step);
        }
    }
    child.removeAllListeners('exit');
    await send('Browser.close').catch(() => {});
    child.kill('SIGKILL');
    process.exit(0);
}

setTimeout(() => die('timed out'), 60000).unref();
main().catch((e) => die(e.message));
