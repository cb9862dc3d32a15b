// Response streaming handlers for the integration tests, written as AWS's documentation writes
// them (Lambda developer guide, "Response streaming for Lambda functions").
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Writes event.words, pausing event.pause ms after each: the test times their arrival.
export const words = awslambda.streamifyResponse(async (event, responseStream, context) => {
  responseStream.setContentType('text/plain');
  for (const word of event.words ?? ['one', 'two', 'three']) {
    responseStream.write(word);
    console.log(`wrote ${word}`);
    await sleep(event.pause ?? 0);
  }
  responseStream.end();
});

// A function URL's response: status, headers and cookies first, then the body.
export const page = awslambda.streamifyResponse(async (event, responseStream) => {
  responseStream = awslambda.HttpResponseStream.from(responseStream, {
    statusCode: 201,
    headers: { 'Content-Type': 'text/html', 'X-Streamed': 'yes' },
    cookies: ['flavour=oat'],
  });
  responseStream.write('<p>first</p>');
  await sleep(event.pause ?? 0);
  responseStream.end('<p>last</p>');
});

// Fails after it has begun: the error goes in the stream's trailers.
export const midway = awslambda.streamifyResponse(async (event, responseStream) => {
  responseStream.write('partial');
  await sleep(50);
  throw new RangeError('gave up midway');
});

// Writes more than event.mb megabytes, as fast as it can.
export const flood = awslambda.streamifyResponse(async (event, responseStream) => {
  const block = Buffer.alloc(1024 * 1024, 120);
  for (let i = 0; i < event.mb; i++) {
    if (!responseStream.write(block)) await new Promise((resolve) => responseStream.once('drain', resolve));
  }
  responseStream.end('end');
});

// A page in two parts, 0.8 s apart, whatever the event: a function URL's client times them.
export const paced = awslambda.streamifyResponse(async (event, responseStream) => {
  responseStream = awslambda.HttpResponseStream.from(responseStream, {
    statusCode: 201,
    headers: { 'Content-Type': 'text/html' },
    cookies: ['flavour=oat'],
  });
  responseStream.write('<p>first</p>');
  await sleep(800);
  responseStream.end('<p>last</p>');
});
