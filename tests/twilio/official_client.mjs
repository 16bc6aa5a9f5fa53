// Drives switchboard's Twilio emulator with Twilio's official Node library (npm `twilio`),
// unchanged except for its HTTP client, which sends https://<product>.twilio.com/... to
// http://127.0.0.1:PORT/<product>/...:
//
//   node tests/twilio/official_client.mjs path/to/switchboard
//
// Sync (service, document, If-Match and the stale-revision error 54103, map and list items,
// paging), Conversations (conversation, SMS participant, messages, ParticipantConversations,
// webhooks), TaskRouter (workspace, worker, attribute update, If-Match), Messages (SMS sent and
// listed through the 2010-04-01 API's relative next_page_uri). Webhooks go to a local
// server and their X-Twilio-Signature is checked with the library's validateRequest: an
// independent check of switchboard's signature code.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import twilio from 'twilio';
import { startEmulator, startSink, deadline } from './emulator_process.mjs';

const NAME = 'twilio official client';
const started = Date.now();
deadline(60000, NAME);

const bin = process.argv[2];
if (!bin) {
  console.error('usage: node official_client.mjs path/to/switchboard');
  process.exit(2);
}
const ACCOUNT_SID = 'AC' + 'fedcba9876543210'.repeat(2);
const AUTH_TOKEN = 'official-client-token-' + process.pid;

/** The library's own RequestClient, with Twilio's hosts pointed at the emulator. */
class EmulatorClient extends twilio.RequestClient {
  constructor(base) {
    super();
    this.base = base;
    this.rewritten = 0;
  }

  request(opts) {
    const m = /^https:\/\/([a-z]+)\.twilio\.com(\/.*)?$/.exec(opts.uri);
    if (m) {
      this.rewritten++;
      return super.request({ ...opts, uri: `${this.base}/${m[1]}${m[2] ?? ''}` });
    }
    return super.request(opts); // next_page_url and the like already name the emulator
  }
}

/** Runs `promise`, which must be rejected with a RestException of `status` and `code`. */
async function rejectsWith(promise, status, code, what) {
  await assert.rejects(promise, (e) => {
    assert.equal(e.status, status, `${what}: HTTP status`);
    assert.equal(e.code, code, `${what}: Twilio error code (${e.message})`);
    assert.equal(e.moreInfo, `https://www.twilio.com/docs/errors/${code}`, `${what}: more_info`);
    return true;
  }, what);
}

let checks = 0;
const check = (fn) => {
  fn();
  checks++;
};

async function sync(client) {
  const service = await client.sync.v1.services.create({ friendlyName: 'official client' });
  check(() => assert.match(service.sid, /^IS[0-9a-f]{32}$/));
  const docs = client.sync.v1.services(service.sid).documents;
  const doc = await docs.create({ uniqueName: 'order-42', data: { state: 'new' }, ttl: 3600 });
  check(() => assert.deepEqual(doc.data, { state: 'new' }));
  check(() => assert.ok(doc.dateExpires instanceof Date && doc.dateExpires > new Date(), 'dateExpires parsed'));

  const updated = await docs(doc.sid).update({ data: { state: 'paid' }, ifMatch: doc.revision });
  check(() => assert.deepEqual(updated.data, { state: 'paid' }));
  check(() => assert.notEqual(updated.revision, doc.revision));
  await rejectsWith(docs(doc.sid).update({ data: { state: 'lost' }, ifMatch: doc.revision }), 412, 54103,
    'document update with a stale If-Match');
  checks++;
  const byName = await docs('order-42').fetch();
  check(() => assert.deepEqual([byName.sid, byName.data], [doc.sid, { state: 'paid' }]));
  await rejectsWith(docs('no-such-document').fetch(), 404, 54100, 'fetching a missing document');
  checks++;

  const map = await client.sync.v1.services(service.sid).syncMaps.create({ uniqueName: 'carts' });
  const items = client.sync.v1.services(service.sid).syncMaps(map.sid).syncMapItems;
  for (const key of ['a', 'b', 'c']) await items.create({ key, data: { key } });
  const listed = await items.list({ pageSize: 1 }); // three pages, following next_page_url
  check(() => assert.deepEqual(listed.map((i) => i.key), ['a', 'b', 'c']));
  await rejectsWith(items.create({ key: 'a', data: {} }), 409, 54208, 'creating a map item twice');
  checks++;

  const list = await client.sync.v1.services(service.sid).syncLists.create({ uniqueName: 'events' });
  const listItems = client.sync.v1.services(service.sid).syncLists(list.sid).syncListItems;
  const first = await listItems.create({ data: { n: 1 } });
  await listItems.create({ data: { n: 2 } });
  const desc = await listItems.list({ order: 'desc' });
  check(() => assert.deepEqual(desc.map((i) => i.data.n), [2, 1]));
  await listItems(first.index).update({ data: { n: 10 }, ifMatch: first.revision });
  await rejectsWith(listItems(first.index).update({ data: {}, ifMatch: first.revision }), 412, 54155,
    'list item update with a stale If-Match');
  checks++;

  await client.sync.v1.services(service.sid).remove();
}

async function conversations(client, sink) {
  const conv = await client.conversations.v1.conversations.create({
    friendlyName: 'Order 42', uniqueName: 'order-42', attributes: JSON.stringify({ order: 42 }),
  });
  check(() => assert.equal(conv.state, 'active'));
  const c = client.conversations.v1.conversations(conv.sid);

  const participant = await c.participants.create({
    'messagingBinding.address': '+15550001111',
    'messagingBinding.proxyAddress': '+15559990000',
  });
  check(() => assert.deepEqual(
    [participant.identity, participant.messagingBinding?.address, participant.messagingBinding?.proxy_address],
    [null, '+15550001111', '+15559990000']));
  const other = await client.conversations.v1.conversations.create({ friendlyName: 'Order 43' });
  await rejectsWith(client.conversations.v1.conversations(other.sid).participants.create({
    'messagingBinding.address': '+15550001111', 'messagingBinding.proxyAddress': '+15559990000',
  }), 409, 50416, 'the same SMS binding in a second open conversation');
  checks++;

  // Two webhooks: POST to a URL with a query string, and GET.
  const postUrl = `${sink.base}/hooks/conversations?tenant=acme&v=1`;
  const getUrl = `${sink.base}/hooks/conversations-get`;
  await c.webhooks.create({
    target: 'webhook', 'configuration.url': postUrl, 'configuration.method': 'post',
    'configuration.filters': ['onMessageAdded'],
  });
  await c.webhooks.create({
    target: 'webhook', 'configuration.url': getUrl, 'configuration.method': 'get',
    'configuration.filters': ['onMessageAdded'],
  });

  const message = await c.messages.create({
    author: 'system', body: 'Your order has shipped', attributes: JSON.stringify({ step: 's1' }),
    xTwilioWebhookEnabled: 'true',
  });
  check(() => assert.equal(message.index, 0));
  await c.messages.create({ body: 'second' }); // no X-Twilio-Webhook-Enabled: no webhook
  const messages = await c.messages.list({ pageSize: 1 });
  check(() => assert.deepEqual(messages.map((m) => m.body), ['Your order has shipped', 'second']));
  check(() => assert.deepEqual(JSON.parse(messages[0].attributes), { step: 's1' }));

  const found = await client.conversations.v1.participantConversations.list({ address: '+15550001111' });
  check(() => assert.deepEqual(found.map((f) => f.conversationSid), [conv.sid]));

  // The webhooks, checked with the library's validateRequest.
  await sink.waitFor(2, 10000);
  await new Promise((r) => setTimeout(r, 300)); // nothing more may arrive (second message: no webhook)
  check(() => assert.equal(sink.hits.length, 2, 'exactly the two webhooks of the first message'));
  const post = sink.hits.find((h) => h.method === 'POST');
  const get = sink.hits.find((h) => h.method === 'GET');
  check(() => assert.ok(post && get, 'one POST and one GET webhook'));

  const params = Object.fromEntries(new URLSearchParams(post.body));
  check(() => assert.equal(sink.base + post.url, postUrl, 'POST webhook URL as configured'));
  check(() => assert.deepEqual(
    [params.EventType, params.ConversationSid, params.MessageSid, params.Body, params.AccountSid],
    ['onMessageAdded', conv.sid, message.sid, 'Your order has shipped', ACCOUNT_SID]));
  const postSig = post.headers['x-twilio-signature'];
  check(() => assert.ok(twilio.validateRequest(AUTH_TOKEN, postSig, postUrl, params),
    `validateRequest rejects the POST webhook's X-Twilio-Signature ${postSig} for ${postUrl}`));
  check(() => assert.ok(!twilio.validateRequest('another-token', postSig, postUrl, params), 'a wrong token must not validate'));
  check(() => assert.ok(!twilio.validateRequest(AUTH_TOKEN, postSig, postUrl, { ...params, Body: 'tampered' }),
    'tampered params must not validate'));

  const getFull = sink.base + get.url;
  check(() => assert.ok(getFull.startsWith(getUrl + '?'), `GET webhook URL ${getFull}`));
  check(() => assert.equal(new URL(getFull).searchParams.get('MessageSid'), message.sid));
  const getSig = get.headers['x-twilio-signature'];
  check(() => assert.ok(twilio.validateRequest(AUTH_TOKEN, getSig, getFull, {}),
    `validateRequest rejects the GET webhook's X-Twilio-Signature ${getSig} for ${getFull}`));

  await c.update({ state: 'closed' });
  await c.remove();
  await client.conversations.v1.conversations(other.sid).remove();
}

async function taskrouter(client) {
  const ws = await client.taskrouter.v1.workspaces.create({ friendlyName: 'support' });
  const workers = client.taskrouter.v1.workspaces(ws.sid).workers;
  const worker = await workers.create({ friendlyName: 'Bob', attributes: JSON.stringify({ skills: ['sales'], level: 1 }) });
  check(() => assert.equal(worker.activityName, 'Offline'));

  const fetched = await workers(worker.sid).fetchWithHttpInfo();
  const etag = fetched.headers.etag ?? fetched.headers.ETag;
  check(() => assert.ok(etag !== undefined, 'worker fetch has an ETag'));
  const activities = await client.taskrouter.v1.workspaces(ws.sid).activities.list({ friendlyName: 'Available' });
  const updated = await workers(worker.sid).update({
    attributes: JSON.stringify({ skills: ['support'] }), activitySid: activities[0].sid, ifMatch: etag,
  });
  // Attributes are replaced whole, not merged.
  check(() => assert.deepEqual(JSON.parse(updated.attributes), { skills: ['support'] }));
  check(() => assert.deepEqual([updated.activityName, updated.available], ['Available', true]));
  await rejectsWith(workers(worker.sid).update({ attributes: '{}', ifMatch: etag }), 412, 20412,
    'worker update with a stale If-Match');
  checks++;
  const available = await workers.list({ available: 'true' });
  check(() => assert.deepEqual(available.map((w) => w.sid), [worker.sid]));
  await client.taskrouter.v1.workspaces(ws.sid).remove();
}

/** SMS outside conversations (api.twilio.com/2010-04-01 Messages), paged by next_page_uri. */
async function messaging(client) {
  const sent = await client.messages.create({ to: '+15550001001', from: '+15550100001', body: 'Reminder: Ana is waiting' });
  check(() => assert.match(sent.sid, /^SM[0-9a-f]{32}$/));
  check(() => assert.deepEqual([sent.to, sent.from, sent.status], ['+15550001001', '+15550100001', 'queued']));
  check(() => assert.ok(sent.dateCreated instanceof Date && !Number.isNaN(sent.dateCreated.getTime()), 'dateCreated parsed'));
  await client.messages.create({ to: '+15550001001', from: '+15550100001', body: 'second' });
  await client.messages.create({ to: '+15550009999', from: '+15550100001', body: 'elsewhere' });
  const listed = await client.messages.list({ to: '+15550001001', from: '+15550100001', pageSize: 1 });
  check(() => assert.deepEqual(listed.map((m) => m.body), ['second', 'Reminder: Ana is waiting']));
  await rejectsWith(client.messages.create({ to: 'not-a-number', from: '+15550100001', body: 'x' }), 400, 21211,
    'an SMS to a number that is not E.164');
  checks++;
}

let emu = null;
let sink = null;
let failure = null;
let httpClient = null;
try {
  emu = await startEmulator(bin, { accountSid: ACCOUNT_SID, authToken: AUTH_TOKEN });
  sink = await startSink();
  httpClient = new EmulatorClient(emu.base);
  const client = twilio(ACCOUNT_SID, AUTH_TOKEN, { httpClient });
  await sync(client);
  await conversations(client, sink);
  await taskrouter(client);
  await messaging(client);
  check(() => assert.ok(httpClient.rewritten > 0));
} catch (e) {
  failure = e;
} finally {
  await sink?.close();
  const how = await emu?.stop();
  if (!failure && how && how.code !== 0) failure = new Error(`emulator exited with code ${how.code} signal ${how.signal} on SIGTERM`);
}

if (failure) {
  console.error(`${NAME}: FAILED: ${failure.stack ?? failure}`);
  if (emu) console.error(`emulator stderr (last lines):\n${emu.stderr().split('\n').slice(-15).join('\n')}`);
  process.exit(1);
}
const version = JSON.parse(readFileSync(new URL('./node_modules/twilio/package.json', import.meta.url), 'utf8')).version;
console.log(`${NAME}: OK: twilio ${version}, ` +
  `${checks} checks, ${httpClient.rewritten} library requests through the emulator, webhook signatures ` +
  `validated by twilio.validateRequest (${((Date.now() - started) / 1000).toFixed(1)} s)`);
