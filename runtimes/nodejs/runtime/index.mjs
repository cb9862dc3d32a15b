// lrun's Node.js runtime interface client: a small, dependency-free stand-in for AWS's
// aws-lambda-nodejs-runtime-interface-client (the "RIC", v3, which backs nodejs20.x). It
// talks to the Lambda Runtime API at $AWS_LAMBDA_RUNTIME_API and copies what a function
// can observe of the RIC: how _HANDLER is resolved, error types and bodies, the console
// text log format, callback and async semantics, and exit codes.
//
// Exit codes (the RIC's own):
//   129  init failed (after POST /runtime/init/error), or an uncaught exception;
//   128  an unhandled promise rejection (reported as Runtime.UnhandledPromiseRejection);
//   1    the Runtime API itself failed (unreachable, or /next answered other than 200).
// Logs: each console call writes one line `<ISO ts>\t<requestId>\t<LEVEL>\t<message>\n` to
// stdout, or with AWS_LAMBDA_LOG_FORMAT=JSON one JSON record {timestamp, level, requestId,
// message}. Like the RIC, newlines inside a message are written as '\r', so that one line
// is always one log record. Not supported: response streaming (awslambda.streamifyResponse).
import fs from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import util from 'node:util';

const require = createRequire(import.meta.url);
const env = process.env;
const [HOST, PORT] = /^\[?(.*?)\]?:(\d+)$/.exec(env.AWS_LAMBDA_RUNTIME_API || '')?.slice(1) ?? [
  env.AWS_LAMBDA_RUNTIME_API,
  '80',
];
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 }); // no timeouts: /next long-polls

// ---- Errors: the RIC's Runtime.* classes (name on the prototype, as there) ----
function runtimeError(name, Base = Error) {
  const cls = class extends Base {};
  Object.defineProperty(cls, 'name', { value: name });
  cls.prototype.name = `Runtime.${name}`;
  return cls;
}
const ImportModuleError = runtimeError('ImportModuleError'); // new X(err): message String(err)
const HandlerNotFound = runtimeError('HandlerNotFound');
const MalformedHandlerName = runtimeError('MalformedHandlerName');
const UserCodeSyntaxError = runtimeError('UserCodeSyntaxError');
const UnhandledPromiseRejection = runtimeError('UnhandledPromiseRejection', class extends Error {
  constructor(reason, promise) {
    super(reason);
    Object.assign(this, { reason, promise });
  }
});
// From Node.js 24 on, AWS's client refuses handlers that take a callback (3 parameters or more).
const CallbackHandlerDeprecated = runtimeError('CallbackHandlerDeprecated');
const CALLBACK_GONE = 'ERROR: AWS Lambda has removed support for callback-based function handlers ' +
  'starting with Node.js 24. You need to modify this function to use a supported handler signature ' +
  'to use Node.js 24 or later. For more information see ' +
  'https://docs.aws.amazon.com/lambda/latest/dg/nodejs-handler.html.';
const RUNTIME_MAJOR = Number(/^AWS_Lambda_nodejs(\d+)/.exec(env.AWS_EXECUTION_ENV || '')?.[1] ??
  process.versions.node.split('.')[0]);
const NodeJsExit = runtimeError('NodeJsExit', class extends Error {
  constructor() {
    super('The Lambda runtime client detected an unexpected Node.js exit code. ' +
      'This is most commonly caused by a Promise that was never settled.');
  }
});

// The body of /error and /init/error, as the RIC's toRapidResponse builds it.
function toRapid(e) {
  const errorLike = (x) => x && ['name', 'message', 'stack'].every((k) => x[k] && typeof x[k] === 'string');
  try {
    if (util.types.isNativeError(e) || errorLike(e)) {
      return { errorType: e.name, errorMessage: e.message, trace: e.stack.split('\n') };
    }
    return { errorType: typeof e, errorMessage: e.toString(), trace: [] };
  } catch {
    return { errorType: 'handled', errorMessage: 'callback called with Error argument, but there was a ' +
      'problem while retrieving one or more of its message, name, and stack' };
  }
}

// ---- Console: the RIC's text or JSON format (AWS_LAMBDA_LOG_FORMAT; AWS_LAMBDA_LOG_LEVEL filters) ----
let requestId; // undefined until the first invocation, then the latest one (as in the RIC)
const LEVELS = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL'];
const minLevel = Math.max(0, LEVELS.indexOf((env.AWS_LAMBDA_LOG_LEVEL || '').toUpperCase()));
const JSON_LOGS = (env.AWS_LAMBDA_LOG_FORMAT || '').toUpperCase() === 'JSON';
// The RIC's jsonErrorReplacer and formatJsonMessage (LogPatch.js): one argument is the message
// as it is (an Error as {errorType, errorMessage, stackTrace, ...}); several are util.format'ed,
// with the first Error's fields beside them.
const errorReplacer = (_k, v) => (v instanceof Error
  ? Object.assign({ errorType: v?.constructor?.name ?? 'UnknownError', errorMessage: v.message,
    stackTrace: typeof v.stack === 'string' ? v.stack.split('\n') : v.stack }, v)
  : v);
function jsonRecord(level, args) {
  const record = { timestamp: new Date().toISOString(), level, requestId };
  if (args.length === 1) {
    record.message = args[0];
    try {
      return JSON.stringify(record, errorReplacer);
    } catch {
      record.message = util.format(record.message);
      return JSON.stringify(record);
    }
  }
  record.message = util.format(...args);
  const e = args.find((a) => a instanceof Error);
  if (e) {
    record.errorType = e?.constructor?.name ?? 'UnknownError';
    record.errorMessage = e.message;
    record.stackTrace = typeof e.stack === 'string' ? e.stack.split('\n') : [];
  }
  return JSON.stringify(record);
}
const write = JSON_LOGS
  ? (level, args) => process.stdout.write(jsonRecord(level, args).replace(/\n/g, '\r') + '\n')
  : (level, args) => process.stdout.write(
    `${new Date().toISOString()}\t${requestId}\t${level}\t${util.format(...args)}`.replace(/\n/g, '\r') + '\n');
LEVELS.forEach((level, i) => {
  console[level.toLowerCase()] = i < minLevel && level !== 'FATAL' ? () => {} : (...a) => write(level, a);
});
console.log = console.info;
// Output is written synchronously, as the RIC's console writes it (fs.writeSync): lrun gives an
// invocation exactly what was written before its runtime posted the answer or asked for the next
// event (through a pipe it reads, see orchestrator/sandbox/pipe.py), so nothing may still sit in
// a Node.js buffer by then. A pipe's writes are otherwise queued in memory once it is full.
for (const stream of [process.stdout, process.stderr]) stream._handle?.setBlocking?.(true);

// AWS's Node.js runtimes include the AWS SDK for JavaScript v3; lrun's images cannot (it
// comes from the npm registry), so a function that imports it is told how to supply it.
function hintSdkLayer(err) {
  const missing = /Cannot find (?:module|package) '(@aws-sdk\/[^'/]+)/.exec(String(err?.message ?? err));
  if (!missing) return;
  process.stdout.write(`lrun: ${missing[1]} is not installed: AWS's Node.js runtimes include the ` +
    "AWS SDK for JavaScript v3, lrun's images do not. Supply it as a layer: a directory holding " +
    `nodejs/node_modules/${missing[1]} (and its dependencies), listed under the function's ` +
    "layers: in lrun.yaml (mounted at /opt, as Lambda does).\n");
}

// "<title> \t{json}" at ERROR level, e.g. "Invoke Error \t{"errorType":...}", as the RIC.
function logError(title, err) {
  hintSdkLayer(err);
  const e = err instanceof Error ? err : new Error(err);
  const withProps = (_k, v) => {
    if (!(v instanceof Error)) return v;
    const o = Object.assign({ errorType: v.name, errorMessage: v.message, code: v.code }, v);
    if (typeof v.stack === 'string') o.stack = v.stack.split('\n');
    return o;
  };
  let text;
  try {
    text = JSON.stringify(e, withProps);
  } catch {
    text = JSON.stringify(toRapid(e));
  }
  if (JSON_LOGS) console.error(e); // the RIC's jsonErrorLogger: the error alone, as a record
  else console.error(title, `\t${text}`);
}

// ---- Runtime API ----
function call(method, route, body, headers) {
  return new Promise((resolve, reject) => {
    const opts = { host: HOST, port: PORT, method, path: `/2018-06-01/runtime${route}`, agent, headers };
    http.request(opts, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c)).on('error', reject).on('end', () =>
        resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    }).on('error', reject).end(body);
  });
}
const post = (route, body, headers = {}) => call('POST', route, body,
  { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), ...headers });
function postError(route, err) {
  const body = toRapid(err);
  const type = String(body.errorType).replace(/[^\x20-\x7e]/g, '');
  return post(route, JSON.stringify(body), { 'Lambda-Runtime-Function-Error-Type': type });
}

// ---- Fatal errors: report once (to /init/error before the first invocation), then exit ----
let currentId;
let dying = false;
async function fatal(err, code) {
  if (dying) return;
  dying = true;
  const route = currentId === undefined ? '/init/error' : `/invocation/${encodeURIComponent(currentId)}/error`;
  await postError(route, err).catch(() => {});
  process.exit(code);
}
process.on('uncaughtException', (e) => {
  logError('Uncaught Exception', e);
  fatal(e, 129);
});
process.on('unhandledRejection', (reason, promise) => {
  const e = new UnhandledPromiseRejection(reason, promise);
  logError('Unhandled Promise Rejection', e);
  fatal(e, 128);
});
let onBeforeExit = null; // runs once the event loop is empty (callbackWaitsForEmptyEventLoop)
process.on('beforeExit', () => {
  const f = onBeforeExit;
  onBeforeExit = null;
  f?.();
});

// ---- Loading the handler, as the RIC's UserFunction.load ----
function isTypeModule(dir) { // nearest package.json says "type": "module"?
  for (; !dir.endsWith('/node_modules'); dir = path.dirname(dir)) {
    const pj = path.join(dir, 'package.json');
    if (fs.existsSync(pj)) {
      try {
        return JSON.parse(fs.readFileSync(pj, 'utf8'))?.type === 'module';
      } catch (e) {
        console.warn(`${pj} cannot be read, it will be ignored for ES module detection purposes.`, e);
        return false;
      }
    }
    if (path.dirname(dir) === dir) break;
  }
  return false;
}

async function loadModule(appRoot, moduleRoot, name) {
  const file = path.resolve(appRoot, moduleRoot, name);
  const esm = isTypeModule(path.dirname(file));
  const load = (ext, asEsm) => (asEsm ? import(pathToFileURL(file + ext).href) : require(file + ext));
  if (fs.existsSync(file)) return require(file); // extensionless: CommonJS, as in the RIC
  if (fs.existsSync(`${file}.js`)) return load('.js', esm);
  if (fs.existsSync(`${file}.mjs`)) return load('.mjs', true);
  if (fs.existsSync(`${file}.cjs`)) return load('.cjs', false);
  // Node-style lookup (node_modules, NODE_PATH). Its error reads, as AWS's does:
  // "Cannot find module '<name>'\nRequire stack:\n- /var/runtime/index.mjs".
  return require(require.resolve(name, { paths: [appRoot, moduleRoot] }));
}

async function loadHandler(appRoot, full) {
  if (full.includes('..')) {
    throw new MalformedHandlerName(`'${full}' is not a valid handler name. ` +
      'Use absolute paths when specifying root directories in handler names.');
  }
  const base = path.basename(full); // "dir/sub/module.fn.nested" -> "module.fn.nested"
  const match = /^([^.]*)\.(.*)$/.exec(base);
  if (!match) throw new MalformedHandlerName('Bad handler');
  let app;
  try {
    app = await loadModule(appRoot, full.slice(0, full.indexOf(base)), match[1]);
  } catch (e) {
    if (e instanceof SyntaxError) throw new UserCodeSyntaxError(e);
    if (e?.code === 'MODULE_NOT_FOUND') throw new ImportModuleError(e);
    throw e; // the user's own error, reported with its own type
  }
  const fn = match[2].split('.').reduce((o, k) => o && o[k], app);
  if (!fn) throw new HandlerNotFound(`${full} is undefined or not exported`);
  if (typeof fn !== 'function') throw new HandlerNotFound(`${full} is not a function`);
  if (RUNTIME_MAJOR >= 24 && fn.length >= 3) throw new CallbackHandlerDeprecated(CALLBACK_GONE);
  return fn;
}

// ---- One invocation; resolves once its result or error has been posted ----
function invoke(handler, isAsync, { headers: h, body }) {
  const id = (requestId = currentId = h['lambda-runtime-aws-request-id']);
  const route = `/invocation/${encodeURIComponent(id)}`;
  if (h['lambda-runtime-trace-id']) env._X_AMZN_TRACE_ID = h['lambda-runtime-trace-id'];
  else delete env._X_AMZN_TRACE_ID;
  return new Promise((resolve, reject) => {
    let completed = false;
    let finished = false;
    let waits = true;
    const send = (err, result) => {
      onBeforeExit = null;
      if (err !== undefined && err !== null) {
        logError('Invoke Error', err);
        return postError(`${route}/error`, err).then(resolve, reject);
      }
      let text;
      try {
        text = JSON.stringify(result === undefined ? null : result) ?? 'null';
      } catch {
        return send(new Error('Unable to stringify response body'));
      }
      post(`${route}/response`, text).then(resolve, reject);
    };
    const complete = (err, result) => {
      if (completed) {
        return console.error('Invocation has already been reported as done. ' +
          'Cannot call complete more than once per invocation.');
      }
      completed = true;
      send(err, result);
    };
    // callback, done, succeed and fail: only the first call to any of them counts.
    const once = (f) => (...args) => { if (!finished) { finished = true; f(...args); } };
    const done = once(complete);
    const callback = once((err, result) => {
      if ((err !== undefined && err !== null) || !waits) return complete(err, result);
      onBeforeExit = () => setImmediate(() => complete(null, result));
    });
    // Neither called back nor settled, and the event loop went empty: a null result for a
    // plain function, Runtime.NodeJsExit for an async one (the RIC's default exit listener).
    onBeforeExit = () => {
      completed = true;
      send(isAsync ? new NodeJsExit() : null, null);
    };
    const json = (name, v) => {
      try { return v === undefined ? undefined : JSON.parse(v); }
      catch (e) { throw new Error(`Cannot parse ${name} as json: ${e}`); }
    };
    try {
      const deadline = Number(h['lambda-runtime-deadline-ms']);
      const context = {
        get callbackWaitsForEmptyEventLoop() { return waits; },
        set callbackWaitsForEmptyEventLoop(v) { waits = v; },
        succeed: (result) => done(null, result),
        fail: (err) => done(err === undefined || err === null ? 'handled' : err, null),
        done,
        functionVersion: env.AWS_LAMBDA_FUNCTION_VERSION,
        functionName: env.AWS_LAMBDA_FUNCTION_NAME,
        memoryLimitInMB: env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
        logGroupName: env.AWS_LAMBDA_LOG_GROUP_NAME,
        logStreamName: env.AWS_LAMBDA_LOG_STREAM_NAME,
        clientContext: json('ClientContext', h['lambda-runtime-client-context']),
        identity: json('CognitoIdentity', h['lambda-runtime-cognito-identity']),
        invokedFunctionArn: h['lambda-runtime-invoked-function-arn'],
        awsRequestId: id,
        getRemainingTimeInMillis: () => deadline - Date.now(),
      };
      const result = handler(JSON.parse(body), context, callback);
      if (result && typeof result.then === 'function') {
        result.then(context.succeed, context.fail).catch(context.fail);
      }
    } catch (err) {
      callback(err);
    }
  });
}

async function main() {
  let handler;
  try {
    handler = await loadHandler(env.LAMBDA_TASK_ROOT || process.cwd(), env._HANDLER || '');
  } catch (e) {
    logError('Uncaught Exception', e); // the RIC's words for init errors, too
    return fatal(e, 129);
  }
  const isAsync = handler.constructor?.name === 'AsyncFunction';
  for (;;) {
    const next = await call('GET', '/invocation/next');
    if (next.status !== 200) throw new Error(`GET /invocation/next answered ${next.status}: ${next.body}`);
    await invoke(handler, isAsync, next);
  }
}

main().catch((e) => {
  process.stderr.write(`lrun runtime: the Runtime API failed: ${e?.stack ?? e}\n`);
  process.exit(1);
});
