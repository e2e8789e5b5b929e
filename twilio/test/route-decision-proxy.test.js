const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { standIn, closedPort, invoke } = require('./helpers.js');
const { handler } = require('../serverless/functions/route-decision.protected.js');

const DECISION = { transition: 'bot', rule: 'default', fallback: false, profile_found: true, attributes: {} };
let lambda;

before(async () => {
  lambda = await standIn((path) => {
    if (path === '/ok') return { body: DECISION };
    if (path === '/slow') return { body: DECISION, delayMs: 2000 };
    if (path === '/error') return { status: 500, body: { error: { code: 'internal_error', message: 'boom' } } };
    if (path === '/badjson') return { body: '{"transition": "bo' };
    if (path === '/unauthorized') return { status: 401, body: { error: { code: 'unauthorized', message: 'no' } } };
    return { status: 404, body: {} };
  });
});
after(() => lambda.close());

const context = (path) => ({ ROUTE_DECISION_URL: lambda.url(path), PROXY_SHARED_SECRET: 'proxy-secret', ROUTE_DECISION_BUDGET_MS: '300' });
const studioEvent = { From: 'whatsapp:+15555550100', channel: 'whatsapp', Body: 'hello', request: { headers: { 'x-secret': 'runtime' } } };

test('a decision is forwarded with the shared secret and answered as is', async () => {
  const before = lambda.received.length;
  const { response } = await invoke(handler, context('/ok'), studioEvent);
  assert.deepEqual(response, DECISION);
  const request = lambda.received[before];
  assert.equal(request.method, 'POST');
  assert.equal(request.headers.authorization, 'Bearer proxy-secret');
  assert.equal(request.headers['content-type'], 'application/json');
  // Only the fields route-decision reads; never the runtime's request object or the message body.
  assert.deepEqual(JSON.parse(request.body), { From: 'whatsapp:+15555550100', channel: 'whatsapp' });
});

test('a slow Lambda gets the fallback within the budget', async () => {
  const { response, elapsedMs } = await invoke(handler, context('/slow'), studioEvent);
  assert.equal(response.transition, 'agent');
  assert.equal(response.fallback, true);
  assert.match(response.reason, /did not answer within 300 ms/);
  assert.ok(elapsedMs < 1500, `answered after ${elapsedMs} ms`);
});

test('a 5xx, a 401, malformed JSON or no Lambda at all get the fallback', async () => {
  const port = await closedPort();
  const cases = [
    [context('/error'), /HTTP 500/],
    [context('/unauthorized'), /HTTP 401/],
    [context('/badjson'), /without a transition/],
    [{ ...context('/'), ROUTE_DECISION_URL: `http://127.0.0.1:${port}/` }, /could not be reached/],
  ];
  for (const [ctx, reason] of cases) {
    const { response } = await invoke(handler, ctx, studioEvent);
    assert.deepEqual(
      { transition: response.transition, rule: response.rule, fallback: response.fallback, attributes: response.attributes },
      { transition: 'agent', rule: 'proxy_fallback', fallback: true, attributes: {} },
    );
    assert.match(response.reason, reason);
    assert.doesNotMatch(JSON.stringify(response), /5555550100|proxy-secret/);
  }
});

test('the fallback transition and the budget are configurable, the budget capped under 10 s', async () => {
  const { response } = await invoke(handler, { ...context('/error'), FALLBACK_TRANSITION: 'bot' }, studioEvent);
  assert.equal(response.transition, 'bot');
  const { response: capped } = await invoke(handler, { ...context('/slow'), ROUTE_DECISION_BUDGET_MS: '60000' }, studioEvent);
  assert.equal(capped.transition, 'bot', 'a 2 s answer comes within the capped 9 s budget');
});
