import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { fillFlow, PLACEHOLDERS, ROUTES, traitNames } from '../fill-flow.mjs';

const require = createRequire(import.meta.url);
const template = readFileSync(new URL('../studio-flow.json', import.meta.url), 'utf8');
const flow = JSON.parse(template);
const { fallback } = require('../serverless/functions/route-decision.protected.js');

// What route-decision answers (shared/src/domain/routing.rs, Decision; `traits` with
// RESPONSE_TRAITS) and the attributes the book's rules set (docs/src/rules.md).
const DECISION_FIELDS = new Set(['transition', 'rule', 'fallback', 'profile_found', 'attributes']);
// Present only with an experiment in the rules (Studio fills an absent one with an empty
// string), so the proxy's fallback need not have them.
const OPTIONAL_FIELDS = new Set(['arm', 'experiment']);
const RETURNED_TRAITS = 'traits';
const RULE_ATTRIBUTES = new Set(['known_worker_sid', 'priority']);
const KNOWN_TYPES = new Set(['trigger', 'make-http-request', 'run-function', 'split-based-on', 'send-to-flex', 'send-and-wait-for-reply', 'gather-input-on-call']);

const byName = new Map(flow.states.map((state) => [state.name, state]));

test('the flow is a well-formed Studio definition', () => {
  assert.equal(byName.size, flow.states.length, 'state names are unique');
  assert.ok(byName.has(flow.initial_state));
  assert.equal(byName.get(flow.initial_state).type, 'trigger');
  for (const state of flow.states) {
    assert.ok(KNOWN_TYPES.has(state.type), `${state.name}: ${state.type}`);
    for (const transition of state.transitions) {
      if (transition.next) assert.ok(byName.has(transition.next), `${state.name} -> ${transition.next}`);
    }
  }
});

test('messages and calls go to route-decision, and its failure goes to Flex', () => {
  const trigger = byName.get('Trigger');
  for (const event of ['incomingMessage', 'incomingCall', 'incomingConversationMessage']) {
    assert.equal(trigger.transitions.find((t) => t.event === event).next, 'route', event);
  }
  // The trigger events current Studio exports carry, the ones not routed included.
  assert.deepEqual(
    trigger.transitions.map((t) => t.event),
    ['incomingMessage', 'incomingCall', 'incomingConversationMessage', 'incomingRequest', 'incomingParent'],
  );
  const route = byName.get('route');
  assert.equal(route.type, 'make-http-request');
  assert.equal(route.properties.method, 'POST');
  assert.deepEqual(route.properties.parameters.map((p) => p.key), ['From', 'channel']);
  const failed = route.transitions.find((t) => t.event === 'failed').next;
  const fallbackTargets = byName.get(failed).transitions.map((t) => byName.get(t.next).type);
  assert.deepEqual(fallbackTargets, ['send-to-flex', 'send-to-flex']);
  const split = byName.get('split_on_transition');
  assert.equal(split.properties.input, '{{widgets.route.parsed.transition}}');
  assert.equal(byName.get(split.transitions.find((t) => t.event === 'noMatch').next).name, 'is_call', 'an unknown transition goes to an agent');
});

test('the flow reads only fields route-decision returns', () => {
  const references = [...template.matchAll(/widgets\.([a-z_]+)\.parsed\.([a-zA-Z_.]+)/g)];
  assert.ok(references.length >= 5);
  for (const [, widget, path] of references) {
    assert.equal(byName.get(widget)?.type, 'make-http-request', `${widget} is an HTTP request widget`);
    const [root, attribute] = path.split('.');
    assert.ok(DECISION_FIELDS.has(root) || OPTIONAL_FIELDS.has(root), `parsed.${path}`);
    if (root === 'attributes') assert.ok(RULE_ATTRIBUTES.has(attribute), `parsed.${path}`);
  }
  // The proxy's fallback has the same shape, so the same references work behind it.
  for (const field of DECISION_FIELDS) assert.ok(field in fallback({}, 'test'), field);
});

test('the Flex attributes are valid JSON once Studio fills them in', () => {
  for (const state of flow.states.filter((s) => s.type === 'send-to-flex')) {
    const rendered = state.properties.attributes.replace(/\{\{[^}]+\}\}/g, 'x');
    assert.doesNotThrow(() => JSON.parse(rendered), state.name);
  }
});

test('the bot branch hands a customer who asks for a person to Send to Flex with the routing attributes', () => {
  const botBranch = byName.get(byName.get('split_on_transition').transitions.find((t) => t.conditions?.[0].value === 'bot').next);
  const targets = botBranch.transitions.map((t) => byName.get(t.next));
  assert.deepEqual(targets.map((t) => t.type).sort(), ['gather-input-on-call', 'send-and-wait-for-reply']);
  for (const bot of targets) {
    // A reply (speech or a keypress on a call) goes to a split; no answer ends the execution.
    const answered = bot.transitions.filter((t) => t.next);
    assert.ok(answered.length > 0, bot.name);
    const asks = new Set(answered.map((t) => t.next));
    assert.equal(asks.size, 1, `${bot.name}: one split reads the reply`);
    const split = byName.get([...asks][0]);
    assert.equal(split.type, 'split-based-on');
    assert.match(split.properties.input, new RegExp(`widgets\\.${bot.name}\\.`), 'the split reads the bot widget\'s reply');
    const handOvers = split.transitions.filter((t) => t.event === 'match');
    assert.ok(handOvers.length > 0, split.name);
    assert.equal(split.transitions.find((t) => t.event === 'noMatch').next, undefined, 'anything else stays with the bot');
    const person = handOvers.find((t) => t.conditions[0].type === 'matches_any_of');
    assert.ok(person.conditions[0].value.split(',').includes('agent'), split.name);
    for (const handOver of handOvers) {
      const flex = byName.get(handOver.next);
      assert.equal(flex.type, 'send-to-flex', `${split.name} -> ${handOver.next}`);
      const attributes = JSON.parse(flex.properties.attributes.replace(/\{\{[^}]+\}\}/g, 'x'));
      for (const name of ['routing_rule', 'routing_transition', 'routing_arm']) assert.ok(name in attributes, `${flex.name}: ${name}`);
    }
  }
  // A call's hand-over goes to the voice channel, a message's to the chat channel.
  assert.equal(byName.get(byName.get('bot_call_asks_for_a_person').transitions[1].next).properties.channel, '__FLEX_VOICE_CHANNEL_SID__');
  assert.equal(byName.get(byName.get('bot_message_asks_for_a_person').transitions[1].next).properties.channel, '__FLEX_CHAT_CHANNEL_SID__');
});

const VALUES = {
  ROUTE_DECISION_URL: 'https://studio:s3cret@abc.lambda-url.us-east-1.on.aws/',
  FLEX_WORKFLOW_SID: `WW${'a'.repeat(32)}`,
  FLEX_CHAT_CHANNEL_SID: `TC${'b'.repeat(32)}`,
  FLEX_VOICE_CHANNEL_SID: `TC${'c'.repeat(32)}`,
  BOT_GREETING: 'Hi "friend"! Our assistant will help.',
};

test('fill-flow replaces every placeholder and escapes values', () => {
  const filled = fillFlow(template, VALUES);
  const text = JSON.stringify(filled);
  assert.doesNotMatch(text, /__[A-Z_]+__/);
  assert.equal(filled.states.find((s) => s.name === 'route').properties.url, VALUES.ROUTE_DECISION_URL);
  assert.equal(filled.states.find((s) => s.name === 'bot_message').properties.body, VALUES.BOT_GREETING);
  assert.deepEqual(Object.keys(PLACEHOLDERS).sort(), [...new Set(template.match(/__[A-Z_]+__/g).map((p) => p.slice(2, -2)))].sort());
});

test('fill-flow refuses missing or malformed values, naming them', () => {
  assert.throws(() => fillFlow(template, { ...VALUES, FLEX_WORKFLOW_SID: undefined }), /FLEX_WORKFLOW_SID is not set/);
  assert.throws(() => fillFlow(template, { ...VALUES, FLEX_CHAT_CHANNEL_SID: 'chat' }), /FLEX_CHAT_CHANNEL_SID must be a task channel SID/);
  assert.throws(() => fillFlow(template, { ...VALUES, ROUTE_DECISION_URL: 'http://insecure/' }), /ROUTE_DECISION_URL must use https:\/\/, not http:\/\//);
});

test('fill-flow names what is wrong with a URL', () => {
  const url = (v) => () => fillFlow(template, { ...VALUES, ROUTE_DECISION_URL: v });
  assert.throws(url('https://abc.lambda-url.us-east-1.on.aws/ '), /ROUTE_DECISION_URL contains a space or line break at character 41/);
  assert.throws(url(' https://abc.lambda-url.us-east-1.on.aws/'), /at character 1/);
  assert.throws(url('abc.lambda-url.us-east-1.on.aws'), /ROUTE_DECISION_URL must start with https:\/\//);
  assert.throws(url('https://'), /ROUTE_DECISION_URL is not a URL/);
  assert.doesNotThrow(url('https://studio:s3cret@abc.lambda-url.us-east-1.on.aws/'));
});

const FUNCTION_VALUES = {
  ROUTE_VIA: 'function',
  FUNCTION_SERVICE_SID: `ZS${'d'.repeat(32)}`,
  FUNCTION_ENVIRONMENT_SID: `ZE${'e'.repeat(32)}`,
  FUNCTION_SID: `ZH${'f'.repeat(32)}`,
  ROUTE_DECISION_FUNCTION_URL: 'https://studio-router-1234.twil.io/route-decision',
  FLEX_WORKFLOW_SID: VALUES.FLEX_WORKFLOW_SID,
  FLEX_CHAT_CHANNEL_SID: VALUES.FLEX_CHAT_CHANNEL_SID,
  FLEX_VOICE_CHANNEL_SID: VALUES.FLEX_VOICE_CHANNEL_SID,
  BOT_GREETING: VALUES.BOT_GREETING,
};

test('with ROUTE_VIA=function the flow calls the protected proxy through a Run Function widget', () => {
  const filled = fillFlow(template, FUNCTION_VALUES);
  const states = new Map(filled.states.map((state) => [state.name, state]));
  const route = states.get('route');
  assert.equal(route.type, 'run-function');
  assert.deepEqual(
    { service: route.properties.service_sid, environment: route.properties.environment_sid, fn: route.properties.function_sid, url: route.properties.url },
    { service: FUNCTION_VALUES.FUNCTION_SERVICE_SID, environment: FUNCTION_VALUES.FUNCTION_ENVIRONMENT_SID, fn: FUNCTION_VALUES.FUNCTION_SID, url: FUNCTION_VALUES.ROUTE_DECISION_FUNCTION_URL },
  );
  assert.deepEqual(route.properties.parameters, byName.get('route').properties.parameters);
  // Run Function's branches are success and fail; both lead where the HTTP widget's did.
  const original = byName.get('route').transitions;
  assert.deepEqual(route.transitions.map((t) => t.event), ['success', 'fail']);
  assert.equal(route.transitions[0].next, original.find((t) => t.event === 'success').next);
  assert.equal(route.transitions[1].next, original.find((t) => t.event === 'failed').next);
  // The rest of the flow is the same, and reads the same parsed fields.
  assert.equal(JSON.stringify(filled).match(/widgets\.route\.parsed\./g).length, template.match(/widgets\.route\.parsed\./g).length);
  assert.doesNotMatch(JSON.stringify(filled), /lambda-url|__[A-Z_]+__/);
  // The proxy it calls is protected: Twilio checks the signature Run Function sends.
  assert.ok(existsSync(new URL('../serverless/functions/route-decision.protected.js', import.meta.url)));
  assert.ok(!existsSync(new URL('../serverless/functions/route-decision.js', import.meta.url)));
});

test('fill-flow names what the function flow is missing', () => {
  const { FUNCTION_SID, ...missing } = FUNCTION_VALUES;
  assert.ok(FUNCTION_SID);
  assert.throws(() => fillFlow(template, missing), /FUNCTION_SID is not set/);
  assert.throws(() => fillFlow(template, { ...FUNCTION_VALUES, ROUTE_DECISION_FUNCTION_URL: 'https://abc.lambda-url.us-east-1.on.aws/' }), /ROUTE_DECISION_FUNCTION_URL must be the proxy Function's .*its host is abc.lambda-url/);
  assert.throws(() => fillFlow(template, { ...FUNCTION_VALUES, ROUTE_VIA: 'carrier-pigeon' }), /ROUTE_VIA must be url or function/);
  assert.deepEqual(Object.keys(ROUTES), ['url', 'function']);
});

test('fill-flow --out writes the file only when the flow is complete', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fill-flow-'));
  const out = join(dir, 'flow.json');
  const script = fileURLToPath(new URL('../fill-flow.mjs', import.meta.url));
  const run = (env) => spawnSync(process.execPath, [script, '--out', out], { env: { PATH: process.env.PATH, ...env }, encoding: 'utf8' });
  const refused = run({ ...VALUES, FLEX_WORKFLOW_SID: 'WW-nope' });
  assert.equal(refused.status, 1);
  assert.match(refused.stderr, /FLEX_WORKFLOW_SID must be a TaskRouter workflow SID/);
  assert.ok(!existsSync(out), 'no file after a refusal');
  const written = run(VALUES);
  assert.equal(written.status, 0, written.stderr);
  assert.equal(JSON.parse(readFileSync(out, 'utf8')).states.find((s) => s.name === 'route').properties.url, VALUES.ROUTE_DECISION_URL);
  const usage = spawnSync(process.execPath, [script, '--output', out], { env: { PATH: process.env.PATH, ...VALUES }, encoding: 'utf8' });
  assert.equal(usage.status, 1);
  assert.match(usage.stderr, /usage: node twilio\/fill-flow.mjs \[--out FILE\]/);
  rmSync(dir, { recursive: true, force: true });
});

test('with RESPONSE_TRAITS the Flex task gets those traits from the decision, not a second lookup', () => {
  const filled = fillFlow(template, { ...VALUES, RESPONSE_TRAITS: 'first_name, plan' });
  const states = new Map(filled.states.map((state) => [state.name, state]));
  for (const name of ['to_flex_message', 'to_flex_call']) {
    const attributes = JSON.parse(states.get(name).properties.attributes);
    assert.deepEqual(attributes.segment_traits, {
      first_name: '{{widgets.route.parsed.traits.first_name}}',
      plan: '{{widgets.route.parsed.traits.plan}}',
    });
    // What was there stays: the routing that wrap-up-ingest copies into the wrap-up events.
    assert.equal(attributes.routing_rule, '{{widgets.route.parsed.rule}}');
    assert.equal(attributes.routing_transition, '{{widgets.route.parsed.transition}}');
    assert.equal(attributes.routing_arm, '{{widgets.route.parsed.arm}}');
  }
  // The fallback branches have no decision to read.
  for (const name of ['to_flex_message_fallback', 'to_flex_call_fallback']) {
    assert.equal(JSON.parse(states.get(name).properties.attributes).segment_traits, undefined);
  }
  // Every reference is to a field route-decision returns.
  const text = JSON.stringify(filled);
  for (const [, root] of text.matchAll(/widgets\.route\.parsed\.([a-z_]+)/g)) {
    assert.ok(DECISION_FIELDS.has(root) || OPTIONAL_FIELDS.has(root) || root === RETURNED_TRAITS, root);
  }
  // Without it, nothing changes.
  assert.deepEqual(fillFlow(template, VALUES), fillFlow(template, { ...VALUES, RESPONSE_TRAITS: '' }));
});

test('fill-flow refuses trait names Studio cannot read', () => {
  assert.deepEqual(traitNames(' first_name ,plan,'), ['first_name', 'plan']);
  assert.throws(() => traitNames('first name,plan-tier'), /first name, plan-tier/);
  assert.throws(() => fillFlow(template, { ...VALUES, RESPONSE_TRAITS: 'a.b' }), /RESPONSE_TRAITS/);
});
