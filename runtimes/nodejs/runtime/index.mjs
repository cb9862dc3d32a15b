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
// is always one log record. Response streaming: awslambda.streamifyResponse and
// awslambda.HttpResponseStream, as the RIC's (ResponseStream.js, HttpResponseStream.js).
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

// ---- Response streaming, as the RIC's UserFunction.js / ResponseStream.js ----
const HANDLER_STREAMING = Symbol.for('aws.lambda.runtime.handler.streaming');
const HANDLER_HIGHWATERMARK = Symbol.for('aws.lambda.runtime.handler.streaming.highWaterMark');
const STREAM_RESPONSE = 'response';
const MalformedStreamingHandler = runtimeError('MalformedStreamingHandler');
const InvalidStreamingOperation = runtimeError('InvalidStreamingOperation');
const HTTP_INTEGRATION = 'application/vnd.awslambda.http-integration-response';

// Implements application/vnd.awslambda.http-integration-response: the JSON prelude (status,
// headers, cookies) and 8 NUL bytes go out before the body's first byte.
class HttpResponseStream {
  static from(underlyingStream, prelude) {
    underlyingStream.setContentType(HTTP_INTEGRATION);
    const metadata = JSON.stringify(prelude); // a NUL byte is not allowed in it
    underlyingStream._onBeforeFirstWrite = (write) => {
      write(metadata);
      write(new Uint8Array(8));
    };
    return underlyingStream;
  }
}
if (!['1', 'true'].includes(env.AWS_LAMBDA_NODEJS_NO_GLOBAL_AWSLAMBDA)) {
  globalThis.awslambda = {
    streamifyResponse: (handler, options) => {
      handler[HANDLER_STREAMING] = STREAM_RESPONSE;
      if (typeof options?.highWaterMark === 'number') {
        handler[HANDLER_HIGHWATERMARK] = parseInt(options.highWaterMark);
      }
      return handler;
    },
    HttpResponseStream,
  };
}
function isStreaming(fn) {
  const mode = fn[HANDLER_STREAMING];
  if (mode === undefined || mode === null || mode === false) return false;
  if (mode === STREAM_RESPONSE) return true;
  throw new MalformedStreamingHandler('Only response streaming is supported.');
}

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
  // Streaming handlers take (event, responseStream, context): three parameters, no callback.
  if (RUNTIME_MAJOR >= 24 && fn.length >= 3 && !isStreaming(fn)) {
    throw new CallbackHandlerDeprecated(CALLBACK_GONE);
  }
  isStreaming(fn); // a wrong mode fails the init, as in the RIC
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

// ---- One streamed invocation (awslambda.streamifyResponse), as the RIC's handleOnceStreaming ----
// The response is POSTed to /response as the handler writes it: chunked, with
// Lambda-Runtime-Function-Response-Mode: streaming, and an error met midway in its trailers.
function openResponseStream(id, highWaterMark) {
  let resolveDone;
  let rejectDone;
  const done = new Promise((resolve, reject) => {
    resolveDone = resolve;
    rejectDone = reject;
  });
  const req = http.request({
    host: HOST,
    port: PORT,
    method: 'POST',
    path: `/2018-06-01/runtime/invocation/${encodeURIComponent(id)}/response`,
    agent,
    highWaterMark,
    headers: {
      'Lambda-Runtime-Function-Response-Mode': 'streaming',
      Trailer: 'Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body',
      'Content-Type': 'application/octet-stream',
    },
  }, (res) => {
    const chunks = [];
    res.on('data', (c) => chunks.push(c)).on('aborted', rejectDone).on('end', () =>
      resolveDone({ status: res.statusCode, body: Buffer.concat(chunks).toString() }));
  });
  req.on('error', rejectDone);
  let started = false;
  const write = req.write.bind(req);
  const end = req.end.bind(req);
  req.write = function (chunk, encoding, callback) {
    if (typeof chunk !== 'string' && !Buffer.isBuffer(chunk) && chunk?.constructor !== Uint8Array) {
      chunk = JSON.stringify(chunk);
    }
    if (!started && typeof this._onBeforeFirstWrite === 'function') {
      this._onBeforeFirstWrite((piece) => write(piece));
    }
    started = true;
    return write(chunk, encoding, callback);
  };
  // end(chunk) writes its chunk through write, so that a prelude still goes first.
  req.end = function (chunk, encoding, callback) {
    if (typeof chunk === 'function') return end(chunk);
    if (chunk !== undefined && chunk !== null) this.write(chunk, typeof encoding === 'string' ? encoding : undefined);
    return end(typeof encoding === 'function' ? encoding : callback);
  };
  req.setContentType = (contentType) => {
    if (started) throw new InvalidStreamingOperation('Cannot set content-type, too late.');
    req.setHeader('Content-Type', contentType);
  };
  const fail = (err) => {
    const body = toRapid(err);
    if (!req.writableEnded) {
      req.addTrailers({
        'Lambda-Runtime-Function-Error-Type': String(body.errorType).replace(/[^\x20-\x7e]/g, ''),
        'Lambda-Runtime-Function-Error-Body': Buffer.from(JSON.stringify(body)).toString('base64'),
      });
      end();
    }
  };
  return { responseStream: req, done, fail };
}

async function invokeStreaming(handler, { headers: h, body }) {
  const id = (requestId = currentId = h['lambda-runtime-aws-request-id']);
  if (h['lambda-runtime-trace-id']) env._X_AMZN_TRACE_ID = h['lambda-runtime-trace-id'];
  else delete env._X_AMZN_TRACE_ID;
  const { responseStream, done, fail } = openResponseStream(id, handler[HANDLER_HIGHWATERMARK]);
  const failed = (err) => {
    logError('Invoke Error', err);
    fail(err);
  };
  let waits = true;
  try {
    const deadline = Number(h['lambda-runtime-deadline-ms']);
    const json = (name, v) => (v === undefined ? undefined : JSON.parse(v));
    const context = {
      get callbackWaitsForEmptyEventLoop() { return waits; },
      set callbackWaitsForEmptyEventLoop(v) { waits = v; },
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
    const result = handler(JSON.parse(body), responseStream, context);
    if (!result || typeof result.then !== 'function') {
      failed('Streaming does not support non-async handlers.');
    } else if ((await result) !== undefined) {
      console.warn('Streaming handlers ignore return values.');
    }
  } catch (err) {
    failed(err);
  }
  // A handler that never ends its stream keeps it open, as on Lambda: the invocation then
  // ends at its timeout.
  await done.catch(() => {});
  if (waits) await new Promise((resolve) => { onBeforeExit = () => setImmediate(resolve); });
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
  const streaming = isStreaming(handler);
  for (;;) {
    const next = await call('GET', '/invocation/next');
    if (next.status !== 200) throw new Error(`GET /invocation/next answered ${next.status}: ${next.body}`);
    await (streaming ? invokeStreaming(handler, next) : invoke(handler, isAsync, next));
  }
}

main().catch((e) => {
  process.stderr.write(`lrun runtime: the Runtime API failed: ${e?.stack ?? e}\n`);
  process.exit(1);
});
