// A Node.js `ws` peer for review14: on every connection it reads N
// messages (argv[3]), then starts the closing handshake with 1000, and
// prints "CLOSED <code> <messages>" when ws reports the connection closed:
// 1000 when the client's close frame came back, 1006 when the TCP
// connection ended without one. Prints "LISTENING <port>" first; exits
// when stdin closes.
'use strict';
const { WebSocketServer } = require('ws');
const n = Number(process.argv[3] || 200);
const wss = new WebSocketServer({ host: '127.0.0.1', port: Number(process.argv[2] || 0), maxPayload: 64 << 20 });
wss.on('listening', () => process.stdout.write('LISTENING ' + wss.address().port + '\n'));
wss.on('connection', (ws) => {
  let got = 0;
  ws.on('message', () => {
    got++;
    if (got === n) ws.close(1000, 'bye');
  });
  ws.on('close', (code) => process.stdout.write('CLOSED ' + code + ' ' + got + '\n'));
  ws.on('error', () => {});
});
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
