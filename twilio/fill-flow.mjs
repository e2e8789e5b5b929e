#!/usr/bin/env node
// Fills studio-flow.json's placeholders from the environment and prints the flow, ready for
// the Studio v2 API (`Definition`) or the Console's import:
//
//   ROUTE_DECISION_URL='https://studio:<secret>@<id>.lambda-url.<region>.on.aws/' \
//   FLEX_WORKFLOW_SID=WW... FLEX_CHAT_CHANNEL_SID=TC... FLEX_VOICE_CHANNEL_SID=TC... \
//   BOT_GREETING='Hi! Our assistant will help you. Reply AGENT for a person.' \
//   node twilio/fill-flow.mjs --out flow.json
//
// (Without --out it prints the flow; with it, the file is written only when the flow is
// complete, so a refusal never leaves an empty flow.json behind.)
//
// With ROUTE_VIA=function the flow calls the protected Twilio Functions proxy through a Run
// Function widget (which signs its call) instead of the Function URL:
//
//   ROUTE_VIA=function FUNCTION_SERVICE_SID=ZS... FUNCTION_ENVIRONMENT_SID=ZE... \
//   FUNCTION_SID=ZH... ROUTE_DECISION_FUNCTION_URL=https://<service>-1234.twil.io/route-decision \
//   FLEX_WORKFLOW_SID=WW... FLEX_CHAT_CHANNEL_SID=TC... FLEX_VOICE_CHANNEL_SID=TC... \
//   BOT_GREETING='Hi!' node twilio/fill-flow.mjs --out flow.json
//
// RESPONSE_TRAITS (optional, the same comma list as route-decision's) passes those traits from
// route-decision's answer to Flex as the task's `segment_traits` attributes, so the agent sees
// them without a second lookup:
//
//   RESPONSE_TRAITS=first_name,plan ... node twilio/fill-flow.mjs --out flow.json
//
// It refuses to print a flow with a placeholder left or a value of the wrong shape.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const COMMON = {
  FLEX_WORKFLOW_SID: (v) => /^WW[0-9a-f]{32}$/.test(v) || 'must be a TaskRouter workflow SID (WW + 32 hex)',
  FLEX_CHAT_CHANNEL_SID: (v) => /^TC[0-9a-f]{32}$/.test(v) || 'must be a task channel SID (TC + 32 hex) for messaging',
  FLEX_VOICE_CHANNEL_SID: (v) => /^TC[0-9a-f]{32}$/.test(v) || 'must be a task channel SID (TC + 32 hex) for voice',
  BOT_GREETING: (v) => v.trim().length > 0 || 'must not be empty',
};

/**
 * `true` for an https URL whose host matches `host` (a RegExp), else what is wrong with it,
 * named: a space (pasted with the URL), the scheme, a missing host.
 */
export function checkUrl(value, what, host = /./) {
  const space = value.search(/\s/);
  if (space >= 0) return `contains a space or line break at character ${space + 1}: ${what} has none`;
  if (/^http:\/\//i.test(value)) return `must use https://, not http:// (${what})`;
  if (!/^https:\/\//i.test(value)) return `must start with https:// (${what})`;
  let url;
  try {
    url = new URL(value);
  } catch {
    return `is not a URL (${what})`;
  }
  if (!host.test(url.hostname)) return `must be ${what}; its host is ${url.hostname}`;
  return true;
}

/** How the flow reaches route-decision, and what each way needs. */
export const ROUTES = {
  // A Make HTTP Request widget to the Function URL (Basic credentials in the URL, or signed).
  url: {
    ROUTE_DECISION_URL: (v) => checkUrl(v, 'the Function URL'),
  },
  // A Run Function widget to the protected Twilio Functions proxy.
  function: {
    FUNCTION_SERVICE_SID: (v) => /^ZS[0-9a-f]{32}$/.test(v) || 'must be a Functions service SID (ZS + 32 hex)',
    FUNCTION_ENVIRONMENT_SID: (v) => /^ZE[0-9a-f]{32}$/.test(v) || 'must be a Functions environment SID (ZE + 32 hex)',
    FUNCTION_SID: (v) => /^ZH[0-9a-f]{32}$/.test(v) || 'must be a Function SID (ZH + 32 hex)',
    ROUTE_DECISION_FUNCTION_URL: (v) =>
      checkUrl(v, "the proxy Function's https://<service>.twil.io/... URL", /^[a-z0-9-]+\.twil\.io$/),
  },
};

/** The template's placeholders (the Function URL flow's). */
export const PLACEHOLDERS = { ...ROUTES.url, ...COMMON };

/** The route state as a Run Function widget: same parameters, same branches. */
function asRunFunction(route, values) {
  return {
    ...route,
    type: 'run-function',
    transitions: route.transitions.map((t) => (t.event === 'failed' ? { ...t, event: 'fail' } : t)),
    properties: {
      offset: route.properties.offset,
      service_sid: values.FUNCTION_SERVICE_SID,
      environment_sid: values.FUNCTION_ENVIRONMENT_SID,
      function_sid: values.FUNCTION_SID,
      url: values.ROUTE_DECISION_FUNCTION_URL,
      parameters: route.properties.parameters,
    },
  };
}

/** The flow with every __NAME__ replaced from `values`, or an error listing what is wrong. */
export function fillFlow(template, values) {
  const via = values.ROUTE_VIA || 'url';
  if (!(via in ROUTES)) throw new Error(`ROUTE_VIA must be url or function, got ${via}`);
  const checks = { ...ROUTES[via], ...COMMON };
  const problems = [];
  for (const [name, check] of Object.entries(checks)) {
    const value = values[name];
    if (value === undefined || value === '') {
      problems.push(`${name} is not set`);
      continue;
    }
    const verdict = check(value);
    if (verdict !== true) problems.push(`${name} ${verdict}`);
  }
  if (problems.length > 0) throw new Error(problems.join('\n'));
  // Values go into JSON strings: escape them as JSON would. The function flow's URL stands
  // in for the Function URL until the route state is rewritten below.
  const filling = via === 'function' ? { ...values, ROUTE_DECISION_URL: values.ROUTE_DECISION_FUNCTION_URL } : values;
  const filled = template.replace(/__([A-Z_]+)__/g, (whole, name) =>
    name in PLACEHOLDERS ? JSON.stringify(filling[name]).slice(1, -1) : whole,
  );
  const left = filled.match(/__[A-Z_]+__/g);
  if (left) throw new Error(`placeholders left: ${[...new Set(left)].join(', ')}`);
  const flow = JSON.parse(filled);
  if (via === 'function') {
    flow.states = flow.states.map((state) => (state.name === 'route' ? asRunFunction(state, values) : state));
  }
  return withTraits(flow, traitNames(values.RESPONSE_TRAITS));
}

/** The trait names of `RESPONSE_TRAITS`, each usable in a Liquid path, or an error. */
export function traitNames(list) {
  const names = (list || '').split(',').map((name) => name.trim()).filter((name) => name !== '');
  const wrong = names.filter((name) => !/^[A-Za-z_][A-Za-z0-9_]*$/.test(name));
  if (wrong.length > 0) {
    throw new Error(`RESPONSE_TRAITS: ${wrong.join(', ')} cannot be read in Studio (letters, digits and _ only)`);
  }
  return names;
}

/** Adds `segment_traits` from route-decision's answer to the Send to Flex widgets it feeds. */
function withTraits(flow, names) {
  if (names.length === 0) return flow;
  const traits = Object.fromEntries(names.map((name) => [name, `{{widgets.route.parsed.traits.${name}}}`]));
  for (const state of flow.states) {
    if (state.type !== 'send-to-flex' || state.name.endsWith('_fallback')) continue;
    const attributes = JSON.parse(state.properties.attributes);
    state.properties.attributes = JSON.stringify({ ...attributes, segment_traits: traits });
  }
  return flow;
}

/** `[]` or `['--out', FILE]`: where the flow goes; anything else is refused. */
function outputOf(args) {
  if (args.length === 0) return null;
  if (args.length === 2 && args[0] === '--out' && args[1]) return args[1];
  throw new Error('usage: node twilio/fill-flow.mjs [--out FILE]');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const template = readFileSync(new URL('./studio-flow.json', import.meta.url), 'utf8');
  try {
    const out = outputOf(process.argv.slice(2));
    const text = `${JSON.stringify(fillFlow(template, process.env), null, 2)}\n`;
    if (out) {
      writeFileSync(out, text);
      process.stderr.write(`fill-flow: wrote ${out}\n`);
    } else {
      process.stdout.write(text);
    }
  } catch (error) {
    process.stderr.write(`fill-flow: ${error.message}\n`);
    process.exit(1);
  }
}
