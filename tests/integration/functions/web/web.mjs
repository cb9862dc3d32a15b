// A Node.js handler behind API Gateway routes (tests/acceptance/test_gateway.py): payload 2.0 on
// an HTTP API, 1.0 on a REST API, told apart by the event's shape.
export const handler = async (event) => {
  if (event.version === "2.0") {
    return {
      statusCode: 201,
      headers: { "content-type": "application/json", "x-runtime": "node" },
      cookies: ["from=node"],
      body: JSON.stringify({
        method: event.requestContext.http.method,
        path: event.rawPath,
        params: event.pathParameters ?? null,
        query: event.queryStringParameters ?? null,
        body: event.body ?? null,
        node: process.version,
      }),
    };
  }
  return {
    statusCode: 200,
    multiValueHeaders: { "X-Runtime": ["node"], "Set-Cookie": ["a=1", "b=2"] },
    body: JSON.stringify({
      method: event.httpMethod,
      resource: event.resource,
      path: event.path,
      params: event.pathParameters,
      multi: event.multiValueQueryStringParameters,
      stage: event.requestContext.stage,
    }),
  };
};
