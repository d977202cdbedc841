#!/usr/bin/env node
// SIP over WebSocket (RFC 7118) against sipd --uas, with the `ws` package as
// the client: one connection per round, subprotocol "sip", an OPTIONS and a
// call (INVITE, 180, 200 with SDP, ACK, BYE, 200), then a clean close.
//
// usage: node sip_ws_client.js URL [CA_FILE] [ROUNDS]
//   URL      ws://127.0.0.1:PORT or wss://127.0.0.1:PORT
//   CA_FILE  wss: the certificate to trust (sipd's self-signed one)
//   ROUNDS   connections one after the other (default 2)
'use strict';

const fs = require('fs');
const crypto = require('crypto');
const WebSocket = require('ws');

const TIMEOUT_MS = 5000;
const url = process.argv[2];
const caFile = process.argv[3] && process.argv[3] !== '-' ? process.argv[3] : null;
const rounds = Number(process.argv[4] || 2);
const secure = url && url.startsWith('wss:');
const viaTransport = secure ? 'WSS' : 'WS';

if (!url) {
  console.error('usage: node sip_ws_client.js URL [CA_FILE] [ROUNDS]');
  process.exit(2);
}

function token() {
  return crypto.randomBytes(6).toString('hex');
}

function parse(text) {
  const [head, ...rest] = text.split('\r\n\r\n');
  const lines = head.split('\r\n');
  const m = /^SIP\/2\.0 (\d{3}) ?(.*)$/.exec(lines[0]);
  if (!m) throw new Error('not a SIP response: ' + JSON.stringify(lines[0]));
  const headers = {};
  for (const line of lines.slice(1)) {
    const i = line.indexOf(':');
    const name = line.slice(0, i).trim().toLowerCase();
    (headers[name] = headers[name] || []).push(line.slice(i + 1).trim());
  }
  return { status: Number(m[1]), reason: m[2], headers, body: rest.join('\r\n\r\n') };
}

// One connection: a queue of received messages and a way to wait for them.
class SipWs {
  constructor(ws) {
    this.ws = ws;
    this.queue = [];
    this.waiter = null;
    this.host = token() + '.invalid';
    ws.on('message', (data, isBinary) => {
      this.queue.push({ text: data.toString('utf8'), isBinary });
      if (this.waiter) this.waiter();
    });
  }

  static open(address) {
    const opts = { handshakeTimeout: TIMEOUT_MS };
    // an IP address: no SNI, the certificate must carry that address
    if (caFile) opts.ca = fs.readFileSync(caFile);
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(address, 'sip', opts);
      ws.once('open', () => resolve(new SipWs(ws)));
      ws.once('error', reject);
    });
  }

  send(text) {
    this.ws.send(text);
  }

  next(label) {
    return new Promise((resolve, reject) => {
      const take = () => {
        clearTimeout(timer);
        this.waiter = null;
        resolve(this.queue.shift());
      };
      const timer = setTimeout(() => {
        this.waiter = null;
        reject(new Error(label + ': no answer within ' + TIMEOUT_MS + ' ms'));
      }, TIMEOUT_MS);
      if (this.queue.length) take();
      else this.waiter = take;
    });
  }

  // Wait for the response to @p cseq, skipping provisional ones unless
  // @p provisional is set. Returns the parsed response.
  async response(label, cseq, provisional) {
    for (;;) {
      const msg = await this.next(label);
      if (msg.isBinary) throw new Error(label + ': binary frame for a UTF-8 message');
      const r = parse(msg.text);
      if ((r.headers.cseq || [])[0] !== cseq)
        throw new Error(label + ': CSeq ' + r.headers.cseq + ', expected ' + cseq);
      if (r.status === 100 || (r.status < 200 && !provisional)) continue;
      return r;
    }
  }

  request(method, opts) {
    const o = opts || {};
    const body = o.body || '';
    const lines = [
      method + ' sip:sipd@127.0.0.1 SIP/2.0',
      'Via: SIP/2.0/' + viaTransport + ' ' + this.host + ';branch=z9hG4bK' + token(),
      'Max-Forwards: 70',
      'From: <sip:alice@example.invalid>;tag=' + (o.fromTag || 'a1'),
      'To: <sip:sipd@127.0.0.1>' + (o.toTag ? ';tag=' + o.toTag : ''),
      'Call-ID: ' + (o.callId || token()),
      'CSeq: ' + (o.cseq || '1 ' + method),
      'Contact: <sip:alice@' + this.host + ';transport=ws>',
    ];
    if (body) lines.push('Content-Type: application/sdp');
    // RFC 7118 §5: the message ends with the WebSocket message, so
    // Content-Length may be left out; the OPTIONS does
    if (method !== 'OPTIONS') lines.push('Content-Length: ' + Buffer.byteLength(body));
    return lines.join('\r\n') + '\r\n\r\n' + body;
  }

  close() {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('close: no answer')), TIMEOUT_MS);
      this.ws.once('close', (code) => {
        clearTimeout(timer);
        resolve(code);
      });
      this.ws.close(1000, 'done');
    });
  }
}

function check(cond, what) {
  if (!cond) throw new Error(what);
}

function checkVia(label, r, host) {
  const via = (r.headers.via || [])[0] || '';
  check(via.startsWith('SIP/2.0/' + viaTransport + ' ' + host),
    label + ': top Via not as sent: ' + via);
  check(/;received=127\.0\.0\.1/.test(via),
    label + ': no received for the .invalid sent-by: ' + via);
}

async function round(n) {
  const tag = '[' + viaTransport + ' ' + n + '] ';
  const c = await SipWs.open(url);
  check(c.ws.protocol === 'sip', tag + 'subprotocol is ' + JSON.stringify(c.ws.protocol));
  console.log('ok   ' + tag + 'connected, subprotocol sip');

  c.send(c.request('OPTIONS'));
  let r = await c.response('OPTIONS', '1 OPTIONS');
  check(r.status === 200, tag + 'OPTIONS: ' + r.status + ' ' + r.reason);
  checkVia(tag + 'OPTIONS', r, c.host);
  check(/INVITE/.test((r.headers.allow || [])[0]), tag + 'OPTIONS: no Allow');
  console.log('ok   ' + tag + 'OPTIONS 200, Via ' + r.headers.via[0]);

  const callId = 'ws-call-' + token();
  const sdp = 'v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\n' +
    'c=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 5004 RTP/AVP 0\r\n';
  c.send(c.request('INVITE', { callId, body: sdp }));
  r = await c.response('INVITE', '1 INVITE', true);
  check(r.status === 180, tag + 'INVITE: first answer ' + r.status + ', expected 180');
  r = await c.response('INVITE', '1 INVITE');
  check(r.status === 200, tag + 'INVITE: ' + r.status + ' ' + r.reason);
  checkVia(tag + 'INVITE 200', r, c.host);
  check((r.headers['content-type'] || [])[0] === 'application/sdp' && /m=audio /.test(r.body),
    tag + 'INVITE 200 without an SDP answer');
  const contact = (r.headers.contact || [])[0] || '';
  check(/;transport=ws>/.test(contact) && contact.startsWith(secure ? '<sips:' : '<sip:'),
    tag + 'INVITE 200 Contact: ' + contact);
  const m = /;tag=([^;>\s]+)/.exec((r.headers.to || [])[0] || '');
  check(m, tag + 'INVITE 200 without a To tag');
  console.log('ok   ' + tag + 'INVITE 180 200 with SDP, Contact ' + contact);

  c.send(c.request('ACK', { callId, toTag: m[1], cseq: '1 ACK' }));
  c.send(c.request('BYE', { callId, toTag: m[1], cseq: '2 BYE' }));
  r = await c.response('BYE', '2 BYE');
  check(r.status === 200, tag + 'BYE: ' + r.status + ' ' + r.reason);
  console.log('ok   ' + tag + 'ACK, BYE 200');
  check(c.queue.length === 0, tag + 'unexpected messages: ' + JSON.stringify(c.queue));

  const code = await c.close();
  check(code === 1000, tag + 'close code ' + code);
  console.log('ok   ' + tag + 'closed 1000');
}

(async () => {
  for (let i = 1; i <= rounds; i++) await round(i);
  console.log('sip_ws_client ' + url + ': all passed');
})().catch((err) => {
  console.error('FAIL ' + (err && err.stack ? err.stack : err));
  process.exit(1);
});
