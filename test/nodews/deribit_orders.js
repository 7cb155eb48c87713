// A minimal Deribit with orders, in Node.js on the `ws` library, written
// from Deribit's API documentation (not from zenws's simulator) for zenws's
// tests of cancel-on-disconnect and the backfill after a reconnect. It
// listens on 127.0.0.1 (port from argv[2], 0 = any), prints
// "LISTENING <port>" on stdout, logs to stderr, and exits when stdin closes.
//
// Deribit's methods, as documented:
//   public/auth                        client_credentials (client_id "zenws-node",
//                                      client_secret "node-secret"); 13004 otherwise
//   public/set_heartbeat, public/test  as Deribit (test_request heartbeats)
//   private/*                          13009 "unauthorized" unless this connection
//                                      authenticated
//   private/enable_cancel_on_disconnect, private/disable_cancel_on_disconnect
//                                      {scope: "connection" (default) | "account"}: "ok"
//   private/get_cancel_on_disconnect   {scope, enabled}
//   private/buy, private/sell          an open order placed on this connection
//   private/subscribe                  user.trades.* and user.orders.* channels
//   private/get_open_orders            the open orders (all connections)
//   private/get_user_trades_by_instrument  instrument_name, start_seq, end_seq,
//                                      count (default 10, max 1000), sorting
//   private/get_user_trades_by_currency    currency, kind, start_id, end_id,
//                                      start_timestamp, end_timestamp, count, sorting
//                                      -> {trades: [...], has_more}
// When a connection closes (closed, reset, terminated) with cancel-on-disconnect
// on, its open orders are cancelled: order_state "cancelled", cancel_reason
// "cancel_on_disconnect". Orders of other connections stay.
//
// Test controls (no authentication):
//   test/place {instrument_name, amount, price}  an open order of no connection
//                                      (another session of the account)
//   test/fill {order_id, amount}       a trade (amount <= 0: the rest), notified on
//                                      the user.trades / user.orders channels covering it
//   test/down                          terminate every authenticated connection and
//                                      refuse handshakes (503) until test/up
//   test/up                            accept handshakes again
//   test/state                         {connections, arms, orders, trades}
//   test/after {method, order_id, amount}  once, right after answering the next
//                                      request of method (on any connection), a
//                                      trade as test/fill: a precise step of a
//                                      client's reconnect
'use strict';
const { WebSocketServer } = require('ws');

const state = { connections: 0, arms: 0, orders: [], trades: [] };
const seqs = {};
let lastTrade = 0;
let refusing = false;
let accountCOD = false;
const live = new Set();
const afters = new Map(); // method -> test/fill params, for test/after

const wss = new WebSocketServer({
  host: '127.0.0.1',
  port: Number(process.argv[2] || 0),
  verifyClient: (info, cb) => (refusing ? cb(false, 503, 'maintenance') : cb(true)),
});
wss.on('listening', () => process.stdout.write('LISTENING ' + wss.address().port + '\n'));

const currencyOf = (instrument) => instrument.split(/[-_]/)[0];
const kindOf = (instrument) => {
  const dashes = instrument.split('-').length - 1;
  return dashes >= 3 ? 'option' : dashes >= 1 ? 'future' : 'spot';
};
// covers: does a user.trades / user.orders channel cover instrument?
const covers = (channel, prefix, instrument) => {
  const parts = channel.slice(prefix.length).split('.');
  if (parts.length === 2) return parts[0] === instrument;
  if (parts.length === 3) {
    return (parts[0] === 'any' || parts[0] === kindOf(instrument)) && (parts[1] === 'any' || parts[1] === currencyOf(instrument));
  }
  return false;
};
const notify = (conn, channel, data) =>
  conn.ws.send(JSON.stringify({ jsonrpc: '2.0', method: 'subscription', params: { channel, data } }));

const place = (conn, direction, p) => {
  const now = Date.now();
  const order = {
    order_id: 'N' + (state.orders.length + 1),
    order_state: 'open',
    direction,
    instrument_name: String(p.instrument_name || 'BTC-PERPETUAL'),
    amount: Number(p.amount) || 1,
    filled_amount: 0,
    price: Number(p.price) || 0,
    order_type: p.type || 'limit',
    creation_timestamp: now,
    last_update_timestamp: now,
    connection: conn ? conn.id : 0,
  };
  state.orders.push(order);
  return order;
};

const fill = (p) => {
  const order = state.orders.find((o) => o.order_id === p.order_id && o.order_state === 'open');
  if (!order) return null;
  const left = order.amount - order.filled_amount;
  const amount = Number(p.amount) > 0 && Number(p.amount) < left ? Number(p.amount) : left;
  order.filled_amount += amount;
  if (order.filled_amount >= order.amount) order.order_state = 'filled';
  lastTrade = Math.max(Date.now(), lastTrade);
  order.last_update_timestamp = lastTrade;
  seqs[order.instrument_name] = (seqs[order.instrument_name] || 0) + 1;
  const trade = {
    trade_id: String(48000000 + state.trades.length + 1),
    trade_seq: seqs[order.instrument_name],
    timestamp: lastTrade,
    instrument_name: order.instrument_name,
    order_id: order.order_id,
    direction: order.direction,
    amount,
    price: order.price,
    state: order.order_state,
    fee: 0,
    fee_currency: currencyOf(order.instrument_name),
    liquidity: 'M',
  };
  state.trades.push(trade);
  for (const conn of live) {
    for (const ch of conn.channels) {
      if (ch.startsWith('user.trades.') && covers(ch, 'user.trades.', trade.instrument_name)) notify(conn, ch, [trade]);
      if (ch.startsWith('user.orders.') && covers(ch, 'user.orders.', trade.instrument_name)) notify(conn, ch, order);
    }
  }
  return trade;
};

// history answers get_user_trades_by_*: inclusive bounds, sorted, count, has_more.
const history = (p, match) => {
  const count = p.count === undefined ? 10 : Number(p.count);
  if (!(count >= 1 && count <= 1000)) return { error: { code: -32602, message: 'Invalid params' } };
  let out = state.trades.filter(
    (t) =>
      match(t) &&
      (p.start_id === undefined || Number(t.trade_id) >= Number(p.start_id)) &&
      (p.end_id === undefined || Number(t.trade_id) <= Number(p.end_id)) &&
      (p.start_seq === undefined || t.trade_seq >= Number(p.start_seq)) &&
      (p.end_seq === undefined || t.trade_seq <= Number(p.end_seq)) &&
      (p.start_timestamp === undefined || t.timestamp >= Number(p.start_timestamp)) &&
      (p.end_timestamp === undefined || t.timestamp <= Number(p.end_timestamp)),
  );
  if (p.sorting !== 'asc') out = out.reverse();
  return { result: { trades: out.slice(0, count), has_more: out.length > count } };
};

const publicOrder = (o) => {
  const { connection, ...rest } = o;
  return rest;
};

wss.on('connection', (ws) => {
  const conn = { id: ++state.connections, ws, authed: false, cod: accountCOD, channels: new Set() };
  let heartbeat = null;
  ws.on('close', () => {
    live.delete(conn);
    if (heartbeat) clearInterval(heartbeat);
    if (!conn.cod) return;
    const now = Date.now();
    for (const o of state.orders) {
      if (o.connection === conn.id && o.order_state === 'open') {
        o.order_state = 'cancelled';
        o.cancel_reason = 'cancel_on_disconnect';
        o.last_update_timestamp = now;
      }
    }
  });
  const reply = (id, result) => ws.send(JSON.stringify({ jsonrpc: '2.0', id, result }));
  const fail = (id, code, message) => ws.send(JSON.stringify({ jsonrpc: '2.0', id, error: { code, message } }));

  ws.on('message', (data, isBinary) => {
    if (isBinary) return;
    let msg;
    try {
      msg = JSON.parse(data.toString());
    } catch (e) {
      return;
    }
    if (!msg || typeof msg !== 'object' || typeof msg.method !== 'string') return;
    const p = msg.params || {};
    const id = msg.id;
    if (msg.method.startsWith('private/') && !conn.authed) {
      fail(id, 13009, 'unauthorized');
      return;
    }
    const scope = p.scope === undefined ? 'connection' : p.scope;
    switch (msg.method) {
      case 'public/auth':
        if (p.grant_type === 'client_credentials' && p.client_id === 'zenws-node' && p.client_secret === 'node-secret') {
          conn.authed = true;
          live.add(conn);
          reply(id, { access_token: 'acc-' + conn.id, refresh_token: 'ref-' + conn.id, expires_in: 900, token_type: 'bearer', scope: 'connection' });
        } else {
          fail(id, 13004, 'invalid_credentials');
        }
        break;
      case 'public/set_heartbeat': {
        const every = Math.max(Number(p.interval) || 10, 0.05) * 1000;
        if (heartbeat) clearInterval(heartbeat);
        heartbeat = setInterval(() => ws.send(JSON.stringify({ jsonrpc: '2.0', method: 'heartbeat', params: { type: 'test_request' } })), every);
        reply(id, 'ok');
        break;
      }
      case 'public/test':
        reply(id, { version: 'node-orders' });
        break;
      case 'private/enable_cancel_on_disconnect':
      case 'private/disable_cancel_on_disconnect': {
        if (scope !== 'connection' && scope !== 'account') {
          fail(id, -32602, 'Invalid params');
          break;
        }
        const on = msg.method === 'private/enable_cancel_on_disconnect';
        conn.cod = on;
        if (scope === 'account') accountCOD = on;
        if (on) state.arms++;
        reply(id, 'ok');
        break;
      }
      case 'private/get_cancel_on_disconnect':
        reply(id, { scope, enabled: scope === 'account' ? accountCOD : conn.cod });
        break;
      case 'private/buy':
      case 'private/sell':
        reply(id, { order: publicOrder(place(conn, msg.method.slice(8), p)), trades: [] });
        break;
      case 'private/subscribe': {
        const got = (p.channels || []).filter((ch) => ch.startsWith('user.'));
        got.forEach((ch) => conn.channels.add(ch));
        reply(id, got);
        break;
      }
      case 'private/get_open_orders':
        reply(id, state.orders.filter((o) => o.order_state === 'open').map(publicOrder));
        break;
      case 'private/get_user_trades_by_instrument':
      case 'private/get_user_trades_by_currency': {
        const byInstrument = msg.method.endsWith('instrument');
        const r = history(p, (t) =>
          byInstrument
            ? t.instrument_name === p.instrument_name
            : (p.currency === 'any' || currencyOf(t.instrument_name) === p.currency) &&
              (p.kind === undefined || p.kind === 'any' || kindOf(t.instrument_name) === p.kind),
        );
        if (r.error) fail(id, r.error.code, r.error.message);
        else reply(id, r.result);
        break;
      }
      case 'test/place':
        reply(id, publicOrder(place(null, 'buy', p)));
        break;
      case 'test/fill': {
        const t = fill(p);
        if (t) reply(id, t);
        else fail(id, 10004, 'order_not_found');
        break;
      }
      case 'test/down':
        refusing = true;
        for (const c of live) c.ws.terminate();
        reply(id, 'ok');
        break;
      case 'test/up':
        refusing = false;
        reply(id, 'ok');
        break;
      case 'test/state':
        reply(id, state);
        break;
      case 'test/after':
        afters.set(String(p.method), { order_id: p.order_id, amount: p.amount });
        reply(id, 'ok');
        break;
      default:
        fail(id, -32601, 'Method not found');
    }
    const after = afters.get(msg.method);
    if (after) {
      afters.delete(msg.method);
      fill(after);
    }
  });
  ws.on('error', (e) => process.stderr.write('deribit_orders: ' + e.message + '\n'));
});

wss.on('error', (e) => {
  process.stderr.write('deribit_orders: ' + e.message + '\n');
  process.exit(1);
});

process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
