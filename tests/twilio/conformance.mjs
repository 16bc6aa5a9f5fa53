// Checks switchboard's Twilio emulator against Twilio's own OpenAPI descriptions (twilio-oai,
// as shipped in the npm package @twilio-alpha/mcp), not against anything switchboard wrote.
//
//   node tests/twilio/conformance.mjs path/to/switchboard
//
// It starts `switchboard twilio-emulator` on 127.0.0.1 port 0, then
//   1. probes every operation of twilio_{sync,conversations,taskrouter}_v1.json and
//      twilio_api_v2010.json (Messages, under the emulator's /api prefix) with an unknown
//      parameter: the emulator answers 400 "Unknown parameter ... this emulator accepts A, B"
//      for the routes it serves and 404/405 for the rest. This finds the routes it serves and
//      the fields each accepts, without trusting a list kept here;
//   2. runs create/fetch/update/delete/list scenarios over Sync (services, documents, maps, map
//      items, lists, list items), Conversations (conversations, participants, messages,
//      webhooks, ParticipantConversations) and TaskRouter (workspaces, activities, workers),
//      including the documented errors. Each request is checked:
//        (a) its path (without the /sync, /conversations, /taskrouter prefix) and method are an
//            operation of the spec;
//        (b) every form field it sends is a property of the operation's requestBody schema,
//            every query field an `in: query` parameter, every header an `in: header` one,
//            and each value is within the spec's schema for it (enum, integer range, boolean)
//            unless a scenario sends it outside on purpose, when the answer must be 400;
//        (c) the response status is one the spec lists and the body validates against the
//            spec's schema for it (with $refs resolved and OpenAPI `nullable`), and has no
//            property the schema lacks nor lacks one it names. The specs describe no error
//            bodies, so 4xx/5xx bodies are checked against Twilio's error shape
//            {code, message, more_info, status} (what the official library's RestException
//            reads), with status = the HTTP status and more_info = .../docs/errors/<code>.
//      Every list is also walked one record a page through next_page_url (Page, PageToken)
//      and asked for a PageSize outside the spec's range (must be 400);
//   3. checks that every field the emulator accepts (from 1) is a spec field of its operation,
//      that every route it serves was exercised by 2, and every field it accepts was sent.
// Prints a summary; exits 1 with one line per mismatch. Deviations listed in KNOWN_DEVIATIONS
// are printed without failing (TWILIO_CONFORMANCE_STRICT=1 fails on them too).

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import Ajv from 'ajv';
import addFormats from 'ajv-formats';
import { startEmulator, startSink, deadline } from './emulator_process.mjs';

const NAME = 'twilio conformance';
const started = Date.now();
deadline(60000, NAME);

const bin = process.argv[2];
if (!bin) {
  console.error('usage: node conformance.mjs path/to/switchboard');
  process.exit(2);
}

const ACCOUNT_SID = 'AC' + '0123456789abcdef'.repeat(2);
const AUTH_TOKEN = 'conformance-token-' + process.pid;
const PRODUCTS = ['sync', 'conversations', 'taskrouter', 'api'];
/** The spec file of each product (the emulator's path prefix): api.twilio.com is 2010-04-01. */
const SPEC_FILES = {
  sync: 'twilio_sync_v1.json',
  conversations: 'twilio_conversations_v1.json',
  taskrouter: 'twilio_taskrouter_v1.json',
  api: 'twilio_api_v2010.json',
};

// --- the specs ------------------------------------------------------------------------------

const SPEC_DIR = fileURLToPath(
  new URL('./node_modules/@twilio-alpha/mcp/twilio-oai/spec/json/', import.meta.url));
const specs = {};
for (const product of PRODUCTS) {
  const file = `${SPEC_DIR}${SPEC_FILES[product]}`;
  try {
    specs[product] = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    console.error(`${NAME}: cannot read ${file}: ${e.message} (run: npm ci --prefix tests/twilio)`);
    process.exit(2);
  }
}
const specVersion = JSON.parse(readFileSync(`${SPEC_DIR}../../../package.json`, 'utf8')).version;

const METHODS = ['get', 'post', 'delete'];

/** The spec's path templates of a product, most literal segments first. */
const templates = {};
for (const product of PRODUCTS) {
  templates[product] = Object.keys(specs[product].paths)
    .map((template) => {
      const segments = template.split('/').filter(Boolean);
      return {
        template,
        segments,
        literals: segments.filter((s) => !s.startsWith('{')).length,
      };
    })
    .sort((a, b) => b.literals - a.literals);
}

/** The spec template a concrete path (without the product prefix) falls under, or null. */
function templateOf(product, path) {
  const have = path.split('/').filter(Boolean);
  for (const t of templates[product]) {
    if (t.segments.length !== have.length) continue;
    if (t.segments.every((s, i) => s.startsWith('{') || s === have[i])) return t.template;
  }
  return null;
}

function deref(spec, schema) {
  let s = schema;
  const seen = new Set();
  while (s && s.$ref) {
    if (seen.has(s.$ref)) throw new Error(`$ref cycle at ${s.$ref}`);
    seen.add(s.$ref);
    if (!s.$ref.startsWith('#/')) throw new Error(`external $ref ${s.$ref}`);
    s = s.$ref
      .slice(2)
      .split('/')
      .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
      .reduce((node, key) => node?.[key], spec);
  }
  return s;
}

/** What the spec says an operation takes. */
function operationFields(spec, op) {
  const params = (op.parameters ?? []).map((p) => deref(spec, p));
  const form = op.requestBody?.content?.['application/x-www-form-urlencoded']?.schema;
  const formProps = deref(spec, form)?.properties ?? {};
  const queryParams = params.filter((p) => p.in === 'query');
  return {
    form: new Set(Object.keys(formProps)),
    query: new Set(queryParams.map((p) => p.name)),
    header: new Set(params.filter((p) => p.in === 'header').map((p) => p.name.toLowerCase())),
    /** field name → its schema, for form and query fields */
    schemas: { ...Object.fromEntries(queryParams.map((p) => [p.name, p.schema])), ...formProps },
  };
}

/**
 * Why a form/query value is outside the spec's schema for it (enum, integer and its range,
 * boolean), or null. Values travel as text, so "object" fields (Data, Attributes) and plain
 * strings are not checked here.
 */
function valueProblem(spec, schema, value) {
  let s = deref(spec, schema);
  if (!s) return null;
  if (s.type === 'array') s = deref(spec, s.items) ?? {};
  if (Array.isArray(s.enum) && !s.enum.includes(value)) return `not one of ${s.enum.join(', ')}`;
  if (s.type === 'integer') {
    if (!/^-?\d+$/.test(value)) return 'not an integer';
    const n = Number(value);
    if (s.minimum !== undefined && n < s.minimum) return `below the minimum ${s.minimum}`;
    if (s.maximum !== undefined && n > s.maximum) return `above the maximum ${s.maximum}`;
  }
  if (s.type === 'boolean' && value !== 'true' && value !== 'false') return 'not true or false';
  return null;
}

// --- validation -----------------------------------------------------------------------------

const ajv = new Ajv({ strict: false, allErrors: true });
addFormats(ajv);
ajv.addFormat('uri-map', true); // Twilio's: an object of URLs (`links`)
// The 2010-04-01 API's formats: dates as RFC 2822, numbers in E.164, ISO 4217 currencies.
ajv.addFormat('date-time-rfc-2822', /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} [+-]\d{4}$/);
ajv.addFormat('phone-number', /^\+[1-9]\d{1,14}$/);
ajv.addFormat('currency', /^[A-Z]{3}$/);
ajv.addFormat('http-method', /^(GET|POST|PUT|DELETE|HEAD|PATCH|OPTIONS|get|post|put|delete|head|patch|options)$/);

/**
 * OpenAPI 3.0's `nullable: true` in JSON Schema terms, on a copy of the spec: `type: T` becomes
 * `type: [T, "null"]` (and an `enum` takes null), a nullable `$ref` becomes `anyOf` [ref, null].
 */
function jsonSchemaOf(node) {
  if (Array.isArray(node)) return node.map(jsonSchemaOf);
  if (!node || typeof node !== 'object') return node;
  const out = {};
  for (const [k, v] of Object.entries(node)) out[k] = jsonSchemaOf(v);
  if (out.nullable === true) {
    delete out.nullable;
    if (out.$ref) return { anyOf: [{ $ref: out.$ref }, { type: 'null' }] };
    if (typeof out.type === 'string') out.type = [out.type, 'null'];
    if (Array.isArray(out.enum) && !out.enum.includes(null)) out.enum = [...out.enum, null];
  } else if (out.nullable === false) {
    delete out.nullable;
  }
  return out;
}
/**
 * The 2010-04-01 API's paging fields (`uri`, `first_page_uri`, `next_page_uri`, ...) are, as its
 * own descriptions say, relative to https://api.twilio.com ("/2010-04-01/Accounts/..."), which
 * is what Twilio sends and its official libraries expect; the spec marks them `format: uri`,
 * which in JSON Schema means an absolute URI. For that product they are checked as URI
 * references.
 */
function relativeUris(node) {
  if (Array.isArray(node)) return node.map(relativeUris);
  if (!node || typeof node !== 'object') return node;
  const out = {};
  for (const [k, v] of Object.entries(node)) out[k] = relativeUris(v);
  if (out.format === 'uri') out.format = 'uri-reference';
  return out;
}
const schemaOf = (product, node) => (product === 'api' ? relativeUris(jsonSchemaOf(node)) : jsonSchemaOf(node));
const components = Object.fromEntries(PRODUCTS.map((p) => [p, schemaOf(p, specs[p].components)]));

const validators = new Map();
function validatorFor(product, key, schema) {
  const id = `${product}:${key}`;
  if (!validators.has(id)) {
    // The operation's schema with the spec's components beside it, so "#/components/..."
    // resolves against this root.
    validators.set(id, ajv.compile({ allOf: [schemaOf(product, schema)], components: components[product] }));
  }
  return validators.get(id);
}

const ERROR_SCHEMA = {
  type: 'object',
  required: ['code', 'message', 'more_info', 'status'],
  additionalProperties: false,
  properties: {
    code: { type: 'integer' },
    message: { type: 'string', minLength: 1 },
    more_info: { type: 'string', format: 'uri' },
    status: { type: 'integer' },
    details: { type: 'object' },
  },
};
const validateError = ajv.compile(ERROR_SCHEMA);

/** Properties the body has and the schema does not, and the reverse (recursively). */
function propertyMismatches(spec, schema, data, where, out) {
  schema = deref(spec, schema);
  if (!schema || data === null || typeof data !== 'object') return;
  if (Array.isArray(data)) {
    if (schema.items) data.forEach((d, i) => propertyMismatches(spec, schema.items, d, `${where}[${i}]`, out));
    return;
  }
  let properties = schema.properties;
  for (const part of schema.allOf ?? []) properties = { ...properties, ...deref(spec, part).properties };
  if (!properties) return; // a free-form object (data, links, timers...)
  for (const key of Object.keys(data)) {
    if (!(key in properties)) out.push(`${where}.${key} is not a property of the spec's schema`);
    else propertyMismatches(spec, properties[key], data[key], `${where}.${key}`, out);
  }
  for (const key of Object.keys(properties))
    if (!(key in data)) out.push(`${where}.${key} is missing (the spec's schema names it)`);
}

// --- bookkeeping ----------------------------------------------------------------------------

/**
 * Deviations of the emulator from the spec that are known and reported, by id: they are printed
 * but do not fail the run, and an entry that no longer occurs fails it (remove the entry).
 * TWILIO_CONFORMANCE_STRICT=1 fails on these too.
 */
// Deviations the emulator is known to have, printed without failing. Empty: every check
// above holds. An entry that stops occurring fails the run, so this list cannot go stale.
const KNOWN_DEVIATIONS = new Set([]);
const strict = process.env.TWILIO_CONFORMANCE_STRICT === '1';

const failures = [];
const known = [];
/** `id`: a stable name for a deviation (no SIDs), matched against KNOWN_DEVIATIONS. */
const fail = (msg, id = null) => {
  if (id && KNOWN_DEVIATIONS.has(id) && !strict) known.push({ id, msg });
  else failures.push(msg);
};
const notes = [];
const stats = { requests: 0, validated2xx: 0, validatedErrors: 0, ops: new Set(), probed: 0 };
/** "METHOD product template" → Set of fields the scenarios sent. */
const sent = new Map();
const opKey = (method, product, template) => `${method} /${product}${template}`;

// --- requests -------------------------------------------------------------------------------

const REQUEST_TIMEOUT_MS = 10000;
/** fetch, failing with the request's name if no answer comes within REQUEST_TIMEOUT_MS. */
async function timedFetch(url, init, label) {
  const t0 = Date.now();
  try {
    return await fetch(url, { ...init, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  } catch (e) {
    throw new Error(`${label}: no answer (${e.name}: ${e.message}) after ${Date.now() - t0} ms`);
  }
}

let BASE = '';
const AUTH = 'Basic ' + Buffer.from(`${ACCOUNT_SID}:${AUTH_TOKEN}`).toString('base64');

function pairs(fields) {
  if (!fields) return [];
  if (Array.isArray(fields)) return fields;
  return Object.entries(fields).flatMap(([k, v]) => (Array.isArray(v) ? v.map((x) => [k, x]) : [[k, v]]));
}

/**
 * One request, checked (a)(b)(c).
 *   call('POST', '/sync/v1/Services', { form: {...}, query, headers, expect: 201, code, label })
 * `offSpec`: a deliberately wrong route (only the error shape is checked);
 * `unknownFields`: fields sent on purpose although the spec lacks them (not flagged by b);
 * `badValues`: fields given a value outside the spec's schema on purpose (the emulator must
 * answer 400).
 * Returns { status, body, headers }.
 */
async function call(method, fullPath, opts = {}) {
  const { form, query, headers = {}, expect, code, offSpec = false, unknownFields = [], badValues = [] } = opts;
  const label = `${method} ${fullPath}`;
  const [, product, ...rest] = fullPath.split('?')[0].split('/');
  const path = '/' + rest.join('/');
  const spec = specs[product];
  let op = null;
  let template = null;

  if (!offSpec) {
    template = spec ? templateOf(product, decodeURIComponent(path)) : null;
    if (!template) fail(`(a) ${label}: no path of ${SPEC_FILES[product] ?? product} matches ${path}`);
    else if (!spec.paths[template][method.toLowerCase()])
      fail(`(a) ${label}: ${template} has no ${method} in the spec (it has ${METHODS.filter((m) => spec.paths[template][m]).join(', ')})`);
    else op = spec.paths[template][method.toLowerCase()];
  }

  const formPairs = pairs(form);
  const queryPairs = pairs(query);
  if (op) {
    const key = opKey(method, product, template);
    stats.ops.add(key);
    if (!sent.has(key)) sent.set(key, new Set());
    const allowed = operationFields(spec, op);
    for (const [name, value] of [...formPairs, ...queryPairs]) {
      const problem = allowed.schemas[name] ? valueProblem(spec, allowed.schemas[name], value) : null;
      if (problem && !badValues.includes(name))
        fail(`(b) ${method} /${product}${template}: ${name}=${value} is ${problem} (the spec's schema for it)`);
      if (!problem && badValues.includes(name))
        fail(`test bug: ${method} /${product}${template}: ${name}=${value} is meant to be outside the spec but is within it`);
    }
    for (const [name] of formPairs) {
      sent.get(key).add(name);
      if (!allowed.form.has(name) && !unknownFields.includes(name))
        fail(`(b) ${method} /${product}${template}: form field ${name} is not in the spec's requestBody (${[...allowed.form].join(', ') || 'none'})`);
    }
    for (const [name] of queryPairs) {
      sent.get(key).add(name);
      if (!allowed.query.has(name) && !unknownFields.includes(name))
        fail(`(b) ${method} /${product}${template}: query field ${name} is not a query parameter in the spec (${[...allowed.query].join(', ') || 'none'})`);
    }
    for (const name of Object.keys(headers))
      if (!allowed.header.has(name.toLowerCase()) && name.toLowerCase() !== 'authorization')
        fail(`(b) ${method} /${product}${template}: header ${name} is not a header parameter in the spec (${[...allowed.header].join(', ') || 'none'})`);
  }

  let url = BASE + fullPath;
  if (queryPairs.length) url += (url.includes('?') ? '&' : '?') + new URLSearchParams(queryPairs);
  const init = { method, headers: { Authorization: AUTH, Accept: 'application/json', ...headers } };
  if (formPairs.length) {
    init.body = new URLSearchParams(formPairs).toString();
    init.headers['Content-Type'] = 'application/x-www-form-urlencoded';
  }
  const res = await timedFetch(url, init, label);
  stats.requests++;
  const text = await res.text();
  let body = null;
  if (text.length) {
    try {
      body = JSON.parse(text);
    } catch {
      fail(`(c) ${label}: ${res.status} body is not JSON: ${text.slice(0, 200)}`);
    }
  }
  const status = res.status;
  if (expect !== undefined && status !== expect)
    fail(`${label}: expected HTTP ${expect}, got ${status}: ${text.slice(0, 300)}`);

  if (status >= 200 && status < 300) {
    if (op) checkSuccess(product, method, template, op, status, body, text, label);
  } else {
    checkError(status, body, label, code);
  }
  return { status, body, headers: res.headers };
}

function checkSuccess(product, method, template, op, status, body, text, label) {
  const spec = specs[product];
  const response = op.responses[String(status)];
  if (!response) {
    fail(`(c) ${method} /${product}${template}: status ${status} is not a response of the spec (${Object.keys(op.responses).join(', ')})`);
    return;
  }
  const schema = response.content?.['application/json']?.schema;
  if (!schema) {
    if (text.length) fail(`(c) ${method} /${product}${template}: ${status} has no body in the spec, got ${text.slice(0, 120)}`);
    else stats.validated2xx++;
    return;
  }
  const validate = validatorFor(product, `${method} /${product}${template} ${status}`, schema);
  if (!validate(body)) {
    for (const e of validate.errors)
      fail(`(c) ${method} /${product}${template} → ${status}: body${e.instancePath} ${e.message}${e.params?.format ? ` (${e.params.format})` : ''}`);
  }
  const mismatches = [];
  propertyMismatches(spec, schema, body, 'body', mismatches);
  for (const m of mismatches) fail(`(c) ${method} /${product}${template} → ${status}: ${m}`);
  stats.validated2xx++;
}

function checkError(status, body, label, code) {
  if (!validateError(body)) {
    for (const e of validateError.errors) fail(`(c) ${label} → ${status}: error body${e.instancePath} ${e.message}`);
    return;
  }
  if (body.status !== status) fail(`(c) ${label}: error body status ${body.status} but HTTP ${status}`);
  if (body.more_info !== `https://www.twilio.com/docs/errors/${body.code}`)
    fail(`(c) ${label}: more_info ${body.more_info} should be https://www.twilio.com/docs/errors/${body.code}`);
  if (code !== undefined && body.code !== code) fail(`${label}: expected Twilio error ${code}, got ${body.code}: ${body.message}`);
  stats.validatedErrors++;
}

/**
 * The checks above must be able to fail: a document with a wrong SID pattern, a number for a
 * string, an unknown property and a missing one must each be caught.
 */
function selfCheck() {
  const op = specs.sync.paths['/v1/Services/{ServiceSid}/Documents/{Sid}'].get;
  const schema = op.responses['200'].content['application/json'].schema;
  const validate = validatorFor('sync', 'self-check', schema);
  const good = {
    sid: 'ET' + '0'.repeat(32), unique_name: null, account_sid: ACCOUNT_SID, service_sid: 'IS' + '0'.repeat(32),
    url: 'https://sync.twilio.com/v1/x', links: {}, revision: '0', data: {}, date_expires: null,
    date_created: '2024-01-01T00:00:00Z', date_updated: '2024-01-01T00:00:00Z', created_by: 'system',
  };
  const problems = [];
  if (!validate(good)) problems.push(`a valid document fails: ${ajv.errorsText(validate.errors)}`);
  for (const [what, bad] of [
    ['a wrong SID prefix', { ...good, sid: 'XX' + '0'.repeat(32) }],
    ['a number revision', { ...good, revision: 1 }],
    ['a string date', { ...good, date_created: 'yesterday' }],
  ])
    if (validate(bad)) problems.push(`${what} passes`);
  const mismatches = [];
  const { created_by, ...missing } = good;
  propertyMismatches(specs.sync, schema, { ...missing, extra: 1 }, 'body', mismatches);
  if (mismatches.length !== 2) problems.push(`property check found ${JSON.stringify(mismatches)}`);
  if (problems.length) throw new Error(`validator self-check: ${problems.join('; ')}`);
}

// --- 1. probing what the emulator serves ---------------------------------------------------

const PROBE = 'ZzConformanceProbe';
/** "METHOD /product/template" → fields the emulator accepts, for every route it serves. */
const served = new Map();

async function probeAll() {
  const jobs = [];
  for (const product of PRODUCTS) {
    for (const [template, ops] of Object.entries(specs[product].paths)) {
      for (const method of METHODS) {
        if (!ops[method]) continue;
        const concrete = template.replace(/\{[^}]+\}/g, 'ZZprobe0');
        jobs.push(() => probe(product, template, method.toUpperCase(), `/${product}${concrete}`, ops[method]));
      }
    }
  }
  // A few connections at a time: the emulator serves a kept-alive connection on one of its 32
  // threads until the connection has been idle for a second, so hundreds of connections at
  // once queue for seconds.
  const lanes = Array.from({ length: 6 }, async () => {
    while (jobs.length) await jobs.shift()();
  });
  await Promise.all(lanes);
}

async function probe(product, template, method, path, op) {
  const init = { method, headers: { Authorization: AUTH } };
  let url = BASE + path;
  if (method === 'POST') {
    init.body = `${PROBE}=1`;
    init.headers['Content-Type'] = 'application/x-www-form-urlencoded';
  } else {
    url += `?${PROBE}=1`;
  }
  const res = await timedFetch(url, init, `probe ${method} ${path}`);
  stats.probed++;
  const text = await res.text();
  let body = {};
  try {
    body = JSON.parse(text);
  } catch {
    /* reported below */
  }
  if (res.status === 404 && body.code === 20404) return; // not emulated
  if (res.status === 405) return; // path emulated, method not
  const m = /^Unknown parameter 'ZzConformanceProbe' for \S+ (\S+): this emulator accepts (.*) \(check/.exec(body.message ?? '');
  if (res.status !== 400 || !m) {
    fail(`probe ${method} ${path}: expected 400 "Unknown parameter" (served) or 404/405 (not served), got ${res.status} ${text.slice(0, 200)}`);
    return;
  }
  const key = opKey(method, product, template);
  const pattern = `/${product}${template.replace(/\{[^}]+\}/g, '{}')}`;
  if (m[1] !== pattern) {
    // Another route's `{}` segment swallowed a literal of this one (/Workers/Statistics taken
    // as the worker "Statistics"): this operation is not emulated.
    notes.push(`${key} is not emulated; the emulator's route ${method} ${m[1]} answers it instead`);
    return;
  }
  const accepted = m[2] === 'no parameters' ? [] : m[2].split(', ');
  served.set(key, accepted);
  const allowed = operationFields(specs[product], op);
  const specFields = method === 'POST' ? allowed.form : allowed.query;
  for (const f of accepted)
    if (!specFields.has(f))
      fail(`(b) ${key}: the emulator accepts ${f}, which the spec does not list (spec: ${[...specFields].join(', ') || 'none'})`);
}

// --- 2. scenarios ---------------------------------------------------------------------------

/**
 * Lists `path` one record a page, following next_page_url (so Page and PageToken are sent as the
 * emulator wrote them), and checks that the pages hold what one page of the spec's largest
 * PageSize holds.
 */
async function pageThrough(path, query = {}) {
  const records = [];
  let res = await call('GET', path, { query: { ...query, PageSize: '1' }, expect: 200 });
  const key = res.body?.meta?.key;
  for (let pages = 0; res.status === 200 && key; pages++) {
    records.push(...(res.body[key] ?? []));
    const next = res.body.meta.next_page_url;
    if (!next || pages > 100) break;
    const u = new URL(next);
    res = await call('GET', u.pathname, { query: [...u.searchParams], expect: 200 });
  }
  const [, product, ...rest] = path.split('/');
  const template = templateOf(product, '/' + rest.join('/'));
  const pageSize = specs[product].paths[template]?.get?.parameters?.find((p) => p.name === 'PageSize')?.schema ?? {};
  const most = String(pageSize.maximum ?? 50);
  const whole = (await call('GET', path, { query: { ...query, PageSize: most }, expect: 200 })).body;
  const want = JSON.stringify(whole?.[key] ?? null);
  if (JSON.stringify(records) !== want)
    fail(`paging ${path}: the PageSize=1 pages hold ${records.length} records, one PageSize=${most} page ${whole?.[key]?.length}, or they differ`);
  if (records.length < 2) fail(`paging ${path}: needs at least 2 records to follow a next_page_url, has ${records.length}`);

  // PageSize outside the spec's range is a request Twilio's API description does not allow.
  for (const [bad, bound] of [[pageSize.minimum - 1, `minimum is ${pageSize.minimum}`], [pageSize.maximum + 1, `maximum is ${pageSize.maximum}`]]) {
    if (!Number.isFinite(bad)) continue;
    const res = await call('GET', path, { query: { ...query, PageSize: String(bad) }, badValues: ['PageSize'] });
    if (res.status !== 400)
      fail(`deviation: GET /${product}${template} answers PageSize=${bad} with HTTP ${res.status}, not 400; the spec's ${bound}`,
        `PageSize ${bad > 1 ? 'above maximum' : 'below minimum'}: GET /${product}${template}`);
  }
  return records;
}

const hex = (n) => [...Array(n)].map((_, i) => '0123456789abcdef'[(i * 7 + 3) % 16]).join('');
const FAKE = (prefix) => prefix + hex(32);

async function syncScenario() {
  const S = '/sync/v1/Services';
  const svc = (await call('POST', S, {
    form: {
      FriendlyName: 'conformance', WebhookUrl: 'https://example.com/sync-hook',
      ReachabilityWebhooksEnabled: 'false', AclEnabled: 'false', ReachabilityDebouncingEnabled: 'true',
      ReachabilityDebouncingWindow: '5000', WebhooksFromRestEnabled: 'false',
    },
    expect: 201,
  })).body;
  const IS = svc.sid;
  const svc2 = (await call('POST', S, { form: { FriendlyName: 'conformance other' }, expect: 201 })).body;
  await pageThrough(S);
  await call('GET', `${S}/${IS}`, { expect: 200 });
  await call('POST', `${S}/${IS}`, {
    form: {
      FriendlyName: 'conformance 2', WebhookUrl: 'https://example.com/other', ReachabilityWebhooksEnabled: 'true',
      AclEnabled: 'false', ReachabilityDebouncingEnabled: 'false', ReachabilityDebouncingWindow: '1000',
      WebhooksFromRestEnabled: 'true',
    },
    expect: 200,
  });
  await call('GET', `${S}/${FAKE('IS')}`, { expect: 404 });
  await call('POST', `${S}/${IS}`, { form: { ReachabilityDebouncingWindow: '999' }, expect: 400 });
  await call('POST', `${S}/${IS}`, { form: { AclEnabled: 'maybe' }, badValues: ['AclEnabled'], expect: 400 });

  // Documents
  const D = `${S}/${IS}/Documents`;
  const doc = (await call('POST', D, { form: { UniqueName: 'order-1', Data: '{"state":"new"}', Ttl: '3600' }, expect: 201 })).body;
  await call('POST', D, { form: { Data: '{"n":2}' }, expect: 201 });
  await call('POST', D, { form: { UniqueName: 'order-1', Data: '{}' }, expect: 409, code: 54301 });
  await pageThrough(D);
  await call('GET', `${D}/${doc.sid}`, { expect: 200 });
  const byName = (await call('GET', `${D}/order-1`, { expect: 200 })).body;
  if (byName?.sid !== doc.sid) fail(`GET ${D}/order-1: got ${byName?.sid}, want ${doc.sid}`);
  const upd = await call('POST', `${D}/${doc.sid}`, {
    form: { Data: '{"state":"paid"}', Ttl: '0' }, headers: { 'If-Match': doc.revision }, expect: 200,
  });
  if (upd.headers.get('etag') !== upd.body?.revision) fail(`POST ${D}/{Sid}: ETag ${upd.headers.get('etag')} is not the revision ${upd.body?.revision}`);
  await call('POST', `${D}/${doc.sid}`, { form: { Data: '{}' }, headers: { 'If-Match': doc.revision }, expect: 412, code: 54103 });
  await call('GET', `${D}/${FAKE('ET')}`, { expect: 404, code: 54100 });
  await call('POST', `${D}/${doc.sid}`, { form: { Data: 'not json' }, expect: 400 });
  await call('DELETE', `${D}/${doc.sid}`, { expect: 204 });

  // Maps and items
  const M = `${S}/${IS}/Maps`;
  const map = (await call('POST', M, { form: { UniqueName: 'carts', Ttl: '0' }, expect: 201 })).body;
  await call('POST', M, { form: { UniqueName: 'carts-2', CollectionTtl: '7200' }, expect: 201 });
  await call('POST', M, { form: { UniqueName: 'carts' }, expect: 409, code: 54301 });
  await pageThrough(M);
  await call('GET', `${M}/${map.sid}`, { expect: 200 });
  await call('GET', `${M}/carts`, { expect: 200 });
  await call('POST', `${M}/${map.sid}`, { form: { Ttl: '86400' }, expect: 200 });
  await call('POST', `${M}/${map.sid}`, { form: { CollectionTtl: '0' }, expect: 200 });
  const MI = `${M}/${map.sid}/Items`;
  const item = (await call('POST', MI, { form: { Key: 'alpha', Data: '{"qty":1}', Ttl: '600' }, expect: 201 })).body;
  await call('POST', MI, { form: { Key: 'beta', Data: '{"qty":2}', ItemTtl: '600', CollectionTtl: '86400' }, expect: 201 });
  await call('POST', MI, { form: { Key: 'gamma delta', Data: '{"qty":3}' }, expect: 201 });
  await call('POST', MI, { form: { Key: 'alpha', Data: '{}' }, expect: 409, code: 54208 });
  await call('POST', MI, { form: { Data: '{}' }, expect: 400 });
  const desc = await pageThrough(MI, { Order: 'desc', From: 'gamma delta', Bounds: 'exclusive' });
  if (desc.map((i) => i.key).join() !== 'beta,alpha') fail(`GET ${MI}?Order=desc&From=gamma delta&Bounds=exclusive: keys ${desc.map((i) => i.key)}, want beta,alpha`);
  await pageThrough(MI, { Order: 'asc', Bounds: 'inclusive' });
  await call('GET', MI, { query: { Order: 'sideways' }, badValues: ['Order'], expect: 400 });
  await call('GET', MI, { query: { Bounds: 'loose' }, badValues: ['Bounds'], expect: 400 });
  await call('GET', `${MI}/alpha`, { expect: 200 });
  await call('GET', `${MI}/${encodeURIComponent('gamma delta')}`, { expect: 200 });
  await call('GET', `${MI}/missing`, { expect: 404, code: 54201 });
  await call('POST', `${MI}/alpha`, {
    form: { Data: '{"qty":5}', Ttl: '0', ItemTtl: '0', CollectionTtl: '0' }, headers: { 'If-Match': item.revision }, expect: 200,
  });
  await call('POST', `${MI}/alpha`, { form: { Data: '{}' }, headers: { 'If-Match': item.revision }, expect: 412, code: 54205 });
  await call('DELETE', `${MI}/beta`, { headers: { 'If-Match': '0' }, expect: 204 });
  await call('DELETE', `${M}/${map.sid}`, { expect: 204 });

  // Lists and items
  const L = `${S}/${IS}/Lists`;
  const list = (await call('POST', L, { form: { UniqueName: 'events', Ttl: '0' }, expect: 201 })).body;
  await call('POST', L, { form: { UniqueName: 'events-2', CollectionTtl: '7200' }, expect: 201 });
  await pageThrough(L);
  await call('GET', `${L}/${list.sid}`, { expect: 200 });
  await call('GET', `${L}/events`, { expect: 200 });
  await call('POST', `${L}/${list.sid}`, { form: { Ttl: '86400' }, expect: 200 });
  await call('POST', `${L}/${list.sid}`, { form: { CollectionTtl: '0' }, expect: 200 });
  const LI = `${L}/${list.sid}/Items`;
  const li0 = (await call('POST', LI, { form: { Data: '{"e":0}', Ttl: '600' }, expect: 201 })).body;
  await call('POST', LI, { form: { Data: '{"e":1}', ItemTtl: '600', CollectionTtl: '86400' }, expect: 201 });
  await call('POST', LI, { form: { Data: '{"e":2}' }, expect: 201 });
  await call('POST', LI, { form: { Ttl: '5' }, expect: 400 });
  const ldesc = await pageThrough(LI, { Order: 'desc', From: '2', Bounds: 'exclusive' });
  if (ldesc.map((i) => i.index).join() !== '1,0') fail(`GET ${LI}?Order=desc&From=2&Bounds=exclusive: indexes ${ldesc.map((i) => i.index)}, want 1,0`);
  await pageThrough(LI, { Order: 'asc', Bounds: 'inclusive' });
  await call('GET', `${LI}/${li0.index}`, { expect: 200 });
  await call('GET', `${LI}/99`, { expect: 404, code: 54151 });
  await call('POST', `${LI}/${li0.index}`, {
    form: { Data: '{"e":10}', Ttl: '0', ItemTtl: '0', CollectionTtl: '0' }, headers: { 'If-Match': li0.revision }, expect: 200,
  });
  await call('POST', `${LI}/${li0.index}`, { form: { Data: '{}' }, headers: { 'If-Match': li0.revision }, expect: 412, code: 54155 });
  await call('DELETE', `${LI}/1`, { headers: { 'If-Match': '0' }, expect: 204 });
  await call('DELETE', `${L}/${list.sid}`, { expect: 204 });

  await call('DELETE', `${S}/${IS}`, { expect: 204 });
  await call('DELETE', `${S}/${svc2.sid}`, { expect: 204 });
}

async function conversationsScenario(sinkBase) {
  const C = '/conversations/v1/Conversations';
  const conv = (await call('POST', C, {
    form: {
      FriendlyName: 'Order 1', UniqueName: 'order-1', Attributes: '{"order":1}', State: 'active',
      'Timers.Inactive': 'PT5M', 'Timers.Closed': 'PT20M', MessagingServiceSid: FAKE('MG'),
    },
    expect: 201,
  })).body;
  const CH = conv.sid;
  await call('POST', C, { form: { UniqueName: 'order-1' }, expect: 409, code: 50353 });
  await call('POST', C, { form: { State: 'dormant' }, badValues: ['State'], expect: 400 });
  await call('POST', C, { form: { 'Timers.Inactive': 'PT30S' }, expect: 400 });
  await call('GET', C, { query: { State: 'active' }, expect: 200 });
  await call('GET', `${C}/${CH}`, { expect: 200 });
  await call('GET', `${C}/order-1`, { expect: 200 });
  await call('GET', `${C}/${FAKE('CH')}`, { expect: 404, code: 20404 });
  await call('POST', `${C}/${CH}`, {
    form: {
      FriendlyName: 'Order 1 (paid)', UniqueName: 'order-1-paid', Attributes: '{"order":1,"paid":true}', State: 'inactive',
      'Timers.Inactive': 'PT10M', 'Timers.Closed': 'PT1H', MessagingServiceSid: FAKE('MG'),
    },
    expect: 200,
  });
  await call('POST', `${C}/${CH}`, { form: { State: 'active' }, expect: 200 });

  // Participants
  const P = `${C}/${CH}/Participants`;
  const sms = (await call('POST', P, {
    form: { 'MessagingBinding.Address': '+15550001111', 'MessagingBinding.ProxyAddress': '+15559990000', Attributes: '{"role":"customer"}' },
    expect: 201,
  })).body;
  const chat = (await call('POST', P, { form: { Identity: 'alice', Attributes: '{}', RoleSid: FAKE('RL') }, expect: 201 })).body;
  await call('POST', P, { form: { Identity: 'alice' }, expect: 409, code: 50433 });
  await call('POST', P, { form: { Attributes: '{}' }, expect: 400 });
  await pageThrough(P);
  await call('GET', `${P}/${sms.sid}`, { expect: 200 });
  await call('GET', `${P}/${FAKE('MB')}`, { expect: 404 });
  const other = (await call('POST', C, { form: { FriendlyName: 'Order 2' }, expect: 201 })).body;
  await pageThrough(C);
  await call('POST', `${C}/${other.sid}/Participants`, {
    form: { 'MessagingBinding.Address': '+15550001111', 'MessagingBinding.ProxyAddress': '+15559990000' }, expect: 409, code: 50416,
  });

  // Webhooks
  const W = `${C}/${CH}/Webhooks`;
  const hook = (await call('POST', W, {
    form: [
      ['Target', 'webhook'], ['Configuration.Url', `${sinkBase}/conversation-hook`], ['Configuration.Method', 'post'],
      ['Configuration.Filters', 'onMessageAdded'], ['Configuration.Filters', 'onParticipantAdded'],
    ],
    expect: 201,
  })).body;
  await call('POST', W, {
    form: { Target: 'trigger', 'Configuration.Url': `${sinkBase}/trigger`, 'Configuration.Method': 'get', 'Configuration.Triggers': 'help' },
    expect: 201,
  });
  await call('POST', W, { form: { Target: 'studio', 'Configuration.FlowSid': FAKE('FW') }, expect: 201 });
  await call('POST', W, { form: { Target: 'pigeon' }, badValues: ['Target'], expect: 400 });
  await call('POST', W, { form: { Target: 'webhook', 'Configuration.Url': `${sinkBase}/x`, 'Configuration.Method': 'put' }, badValues: ['Configuration.Method'], expect: 400 });
  await pageThrough(W);
  await call('GET', `${W}/${hook.sid}`, { expect: 200 });

  // Messages
  const Msg = `${C}/${CH}/Messages`;
  const m1 = (await call('POST', Msg, {
    form: { Author: 'alice', Body: 'Your order has shipped', Attributes: '{"step":"s1"}' },
    headers: { 'X-Twilio-Webhook-Enabled': 'true' },
    expect: 201,
  })).body;
  await call('POST', Msg, { form: { Body: 'second' }, expect: 201 });
  await call('POST', Msg, { form: { Author: 'alice' }, expect: 400 });
  await call('POST', Msg, { form: { Body: 'x'.repeat(1601) }, expect: 400, code: 50504 });
  await pageThrough(Msg, { Order: 'desc' });
  await call('GET', Msg, { query: { Order: 'sideways' }, badValues: ['Order'], expect: 400 });
  await call('GET', `${Msg}/${m1.sid}`, { expect: 200 });
  await call('DELETE', `${Msg}/${m1.sid}`, { expect: 204 });
  await call('GET', `${Msg}/${m1.sid}`, { expect: 404 });

  // ParticipantConversations
  const PC = '/conversations/v1/ParticipantConversations';
  const byAddress = (await call('GET', PC, { query: { Address: '+15550001111' }, expect: 200 })).body;
  if (byAddress?.conversations?.map((c) => c.conversation_sid).join() !== CH) fail(`GET ${PC}?Address=...: expected [${CH}], got ${JSON.stringify(byAddress?.conversations?.map((c) => c.conversation_sid))}`);
  await call('POST', `${C}/${other.sid}/Participants`, { form: { Identity: 'alice' }, expect: 201 });
  await pageThrough(PC, { Identity: 'alice' });
  await call('GET', PC, { expect: 400 });

  await call('DELETE', `${W}/${hook.sid}`, { expect: 204 });
  await call('DELETE', `${P}/${chat.sid}`, { expect: 204 });
  await call('DELETE', `${C}/${other.sid}`, { expect: 204 });
  await call('POST', `${C}/${CH}`, { form: { State: 'closed' }, expect: 200 });
  await call('DELETE', `${C}/${CH}`, { expect: 204 });
}

/** SMS through the Messages API (api.twilio.com/2010-04-01): sent, listed, paged, refused. */
async function messagingScenario() {
  const A = '/api/2010-04-01/Accounts';
  const M = `${A}/${ACCOUNT_SID}/Messages.json`;
  const dealer = '+15550001001';
  const proxy = '+15550100001';
  const first = (await call('POST', M, { form: { To: dealer, From: proxy, Body: 'Reminder: Ana is waiting' }, expect: 201 })).body;
  if (first?.status !== 'queued' || first?.to !== dealer || first?.from !== proxy)
    fail(`POST ${M}: expected a queued SMS to ${dealer} from ${proxy}, got ${JSON.stringify(first)}`);
  await call('POST', M, { form: { To: dealer, From: proxy, Body: 'second' }, expect: 201 });
  await call('POST', M, { form: { To: '+15550009999', From: proxy, Body: 'elsewhere' }, expect: 201 });
  await call('POST', M, { form: { From: proxy, Body: 'x' }, expect: 400, code: 21604 });
  await call('POST', M, { form: { To: dealer, Body: 'x' }, expect: 400, code: 21603 });
  await call('POST', M, { form: { To: 'not-a-number', From: proxy, Body: 'x' }, expect: 400, code: 21211 });
  await call('POST', M, { form: { To: dealer, From: proxy }, expect: 400, code: 21602 });
  await call('POST', M, { form: { To: dealer, From: proxy, Body: 'x'.repeat(1601) }, expect: 400, code: 21617 });
  await call('POST', `${A}/${FAKE('AC')}/Messages.json`, { form: { To: dealer, From: proxy, Body: 'x' }, expect: 404, code: 20404 });

  // The list, newest first, walked one record a page through next_page_uri (relative, as
  // Twilio writes it), against one page of the spec's largest PageSize.
  const filter = { To: dealer, From: proxy };
  const records = [];
  let res = await call('GET', M, { query: { ...filter, PageSize: '1' }, expect: 200 });
  for (let pages = 0; res.status === 200; pages++) {
    records.push(...(res.body?.messages ?? []));
    const next = res.body?.next_page_uri;
    if (!next || pages > 10) break;
    const u = new URL(next, 'https://api.twilio.com');
    res = await call('GET', `/api${u.pathname}`, { query: [...u.searchParams], expect: 200 });
  }
  const whole = (await call('GET', M, { query: { ...filter, PageSize: '1000' }, expect: 200 })).body;
  if (JSON.stringify(records) !== JSON.stringify(whole?.messages))
    fail(`paging ${M}: the PageSize=1 pages hold ${records.length} records, one PageSize=1000 page ${whole?.messages?.length}, or they differ`);
  if (records.map((m) => m.body).join() !== 'second,Reminder: Ana is waiting')
    fail(`GET ${M}?To=&From=: expected the two SMS to ${dealer}, newest first, got ${JSON.stringify(records.map((m) => m.body))}`);
  for (const bad of ['0', '1001'])
    await call('GET', M, { query: { PageSize: bad }, badValues: ['PageSize'], expect: 400 });
}

async function taskrouterScenario() {
  const WS = '/taskrouter/v1/Workspaces';
  const ws = (await call('POST', WS, {
    form: {
      FriendlyName: 'support', EventCallbackUrl: 'https://example.com/tr-events', EventsFilter: 'worker.activity.update',
      MultiTaskEnabled: 'true', PrioritizeQueueOrder: 'LIFO',
    },
    expect: 201,
  })).body;
  await call('POST', WS, { form: { EventsFilter: 'x' }, expect: 400 });
  await call('POST', WS, { form: { FriendlyName: 'x', PrioritizeQueueOrder: 'RANDOM' }, badValues: ['PrioritizeQueueOrder'], expect: 400 });
  const ws2 = (await call('POST', WS, { form: { FriendlyName: 'support' }, expect: 201 })).body;
  await pageThrough(WS, { FriendlyName: 'support' });
  await call('DELETE', `${WS}/${ws2.sid}`, { expect: 204 });
  await call('GET', `${WS}/${ws.sid}`, { expect: 200 });
  await call('GET', `${WS}/${FAKE('WS')}`, { expect: 404 });

  const A = `${WS}/${ws.sid}/Activities`;
  await pageThrough(A);
  const acts = (await call('GET', A, { query: { FriendlyName: 'Available', Available: 'true' }, expect: 200 })).body;
  const available = acts?.activities?.[0];
  if (!available) {
    fail(`GET ${A}?FriendlyName=Available: no activity`);
    return;
  }
  await call('GET', `${A}/${available.sid}`, { expect: 200 });

  const K = `${WS}/${ws.sid}/Workers`;
  const wk = (await call('POST', K, {
    form: { FriendlyName: 'Bob', ActivitySid: available.sid, Attributes: '{"skills":["sales"]}' }, expect: 201,
  })).body;
  await call('POST', K, { form: { Attributes: '{}' }, expect: 400 });
  const wk2 = (await call('POST', K, { form: { FriendlyName: 'Carol' }, expect: 201 })).body;
  await pageThrough(K);
  const bob = (await call('GET', K, {
    query: { ActivityName: 'Available', ActivitySid: available.sid, Available: 'true', FriendlyName: 'Bob' },
    expect: 200,
  })).body;
  if (bob?.workers?.map((w) => w.sid).join() !== wk.sid) fail(`GET ${K}?FriendlyName=Bob&...: expected [${wk.sid}], got ${bob?.workers?.map((w) => w.sid)}`);
  // The spec: Available "can be true, 1, or yes" for available, "false, or any value" for not.
  for (const [list, what, key] of [[K, 'Workers', 'workers'], [A, 'Activities', 'activities']]) {
    for (const [value, want] of [['true', true], ['1', true], ['yes', true], ['false', false], ['no', false]]) {
      const r = await call('GET', list, { query: { Available: value } });
      const route = `GET /taskrouter/v1/Workspaces/{WorkspaceSid}/${what}`;
      if (r.status !== 200)
        fail(`deviation: ${route} answers Available=${value} with HTTP ${r.status}; the spec's Available is a string where "true, 1, or yes" ask for available ones and any other value for unavailable ones`,
          `Available=${value}: ${route}`);
      else if (!(r.body?.[key] ?? []).every((x) => x.available === want))
        fail(`${route}?Available=${value}: returned ${key} with available != ${want}`);
    }
  }
  await call('DELETE', `${K}/${wk2.sid}`, { expect: 204 });
  const fetched = await call('GET', `${K}/${wk.sid}`, { expect: 200 });
  const etag = fetched.headers.get('etag');
  await call('POST', `${K}/${wk.sid}`, {
    form: { ActivitySid: wk.activity_sid, Attributes: '{"skills":["support"]}', FriendlyName: 'Bob B.', RejectPendingReservations: 'false' },
    headers: { 'If-Match': etag },
    expect: 200,
  });
  await call('POST', `${K}/${wk.sid}`, { form: { Attributes: '{}' }, headers: { 'If-Match': etag }, expect: 412, code: 20412 });
  await call('POST', `${K}/${wk.sid}`, { form: { Attributes: '[1]' }, expect: 400 });
  await call('DELETE', `${K}/${wk.sid}`, { expect: 204 });
  await call('DELETE', `${WS}/${ws.sid}`, { expect: 204 });
}

/** Requests that are wrong on purpose: the answer must still be Twilio's error shape. */
async function errorScenario() {
  const res = await timedFetch(`${BASE}/sync/v1/Services`, {
    headers: { Authorization: 'Basic ' + Buffer.from(`${ACCOUNT_SID}:wrong`).toString('base64') },
  }, 'GET /sync/v1/Services (wrong token)');
  stats.requests++;
  const body = await res.json().catch(() => null);
  if (res.status !== 401) fail(`GET /sync/v1/Services with a wrong token: expected 401, got ${res.status}`);
  checkError(res.status, body, 'GET /sync/v1/Services (wrong token)', 20003);
  await call('POST', '/sync/v1/Services', { form: { Friendlyname: 'x' }, unknownFields: ['Friendlyname'], expect: 400, code: 20001 });
  await call('GET', '/sync/v1/NoSuchThing', { offSpec: true, expect: 404, code: 20404 });
  await call('GET', '/nosuchproduct/v1/Things', { offSpec: true, expect: 404 });
}

// --- 3. coverage ----------------------------------------------------------------------------

function coverage() {
  for (const [key, accepted] of served) {
    if (!stats.ops.has(key)) {
      fail(`coverage: the emulator serves ${key} but no scenario exercised it`);
      continue;
    }
    const used = sent.get(key) ?? new Set();
    for (const f of accepted)
      if (!used.has(f)) fail(`coverage: ${key} accepts ${f} but no scenario sent it`);
  }
  for (const key of stats.ops)
    if (!served.has(key)) fail(`coverage: scenarios exercised ${key} but the probe found it not served`);
}

// --- main -----------------------------------------------------------------------------------

let emu = null;
let sink = null;
let aborted = false;
try {
  emu = await startEmulator(bin, { accountSid: ACCOUNT_SID, authToken: AUTH_TOKEN });
  BASE = emu.base;
  selfCheck();
  sink = await startSink();
  await probeAll();
  await syncScenario();
  await conversationsScenario(sink.base);
  await taskrouterScenario();
  await messagingScenario();
  await errorScenario();
  coverage();
} catch (e) {
  aborted = true;
  fail(`aborted: ${e.stack ?? e}`);
} finally {
  await sink?.close();
  if (emu) {
    const how = await emu.stop();
    if (how.code !== 0) fail(`emulator exited with code ${how.code} signal ${how.signal} on SIGTERM; stderr:\n${emu.stderr()}`);
  }
}

console.log(
  `${NAME}: @twilio-alpha/mcp ${specVersion} specs (${stats.probed} operations probed): emulator serves ${served.size}, ` +
  `all exercised: ${stats.ops.size} routes checked, ${stats.requests} requests, ` +
  `${stats.validated2xx} 2xx bodies and ${stats.validatedErrors} error bodies validated ` +
  `(${((Date.now() - started) / 1000).toFixed(1)} s)`);
for (const n of notes) console.log(`  note: ${n}`);
for (const k of new Set(known.map((k) => k.msg.replace(/^deviation: /, "")))) console.log(`  known deviation: ${k}`);
if (!strict && !aborted)
  for (const id of KNOWN_DEVIATIONS)
    if (!known.some((k) => k.id === id)) failures.push(`KNOWN_DEVIATIONS lists "${id}", which no longer occurs: remove it`);
const distinct = [...new Set(failures)];
if (distinct.length) {
  console.error(`${NAME}: FAILED, ${distinct.length} mismatch(es):`);
  for (const f of distinct) console.error('  ' + f);
  process.exit(1);
}
console.log(`${NAME}: OK`);
