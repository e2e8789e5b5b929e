const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { standIn, invoke } = require('./helpers.js');
const { handler } = require('../serverless/functions/taskrouter-events.protected.js');

let lambda;
before(async () => {
  lambda = await standIn((path) => {
    if (path === '/ok') return { status: 204 };
    if (path === '/slow') return { status: 204, delayMs: 2000 };
    if (path === '/error') return { status: 502, body: { error: { code: 'delivery_failed', message: 'segment down' } } };
    return { status: 404 };
  });
});
after(() => lambda.close());

const context = (path) => ({ WRAP_UP_INGEST_URL: lambda.url(path), PROXY_SHARED_SECRET: 'proxy-secret', WRAP_UP_BUDGET_MS: '300' });
const callback = {
  EventType: 'reservation.wrapup',
  TaskSid: 'WT0000000000000000000000000000vo01',
  TaskAttributes: '{"from":"+15555550100","direction":"inbound"}',
  TaskAge: '342',
  request: { headers: { 'x-twilio-signature': 'checked-by-the-runtime' } },
};

test('a TaskRouter callback is forwarded as the same form, and 204 comes back', async () => {
  const before = lambda.received.length;
  const { response } = await invoke(handler, context('/ok'), callback);
  assert.equal(response.statusCode, 204);
  const request = lambda.received[before];
  assert.equal(request.headers.authorization, 'Bearer proxy-secret');
  assert.equal(request.headers['content-type'], 'application/x-www-form-urlencoded');
  const form = Object.fromEntries(new URLSearchParams(request.body));
  assert.deepEqual(form, {
    EventType: 'reservation.wrapup',
    TaskSid: 'WT0000000000000000000000000000vo01',
    TaskAttributes: '{"from":"+15555550100","direction":"inbound"}',
    TaskAge: '342',
  });
});

test('a failed or slow delivery is not acknowledged', async () => {
  const failed = await invoke(handler, context('/error'), callback);
  assert.equal(failed.response.statusCode, 502);
  assert.equal(failed.response.body.error.code, 'delivery_failed');
  const slow = await invoke(handler, context('/slow'), callback);
  assert.equal(slow.response.statusCode, 504);
  assert.ok(slow.elapsedMs < 1500, `answered after ${slow.elapsedMs} ms`);
});
